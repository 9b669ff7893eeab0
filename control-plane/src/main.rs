//! `bgw-cloud`: the reference control plane. Parses arguments and runs the server.

use std::path::PathBuf;
use std::process::ExitCode;

use bgw_cloud::tls::TlsFiles;
use bgw_cloud::{ServeConfig, TlsMode};
use clap::{Args, Parser, Subcommand};

mod cli_release;

#[derive(Parser)]
#[command(
    name = "bgw-cloud",
    version,
    about = "Reference control plane for the backup gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS Backup Gateway API.
    Serve(ServeArgs),
    /// Software releases for the gateways: keys, publishing, update history.
    #[command(subcommand)]
    Release(cli_release::ReleaseCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// Data directory: store, TLS certificate, admin credentials.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "123456789012")]
    account_id: String,
    /// PEM certificate chain (with --tls-key); default: self-signed under DATA/tls/.
    #[arg(long, requires = "tls_key", conflicts_with = "plain_http")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP (local testing only).
    #[arg(long)]
    plain_http: bool,
    /// Sustained requests per second allowed per access key.
    #[arg(long, default_value_t = 50)]
    throttle_rps: u32,
    /// Burst of requests allowed per access key above the sustained rate.
    #[arg(long, default_value_t = 100)]
    throttle_burst: u32,
    /// Lifetime of a new activation key (e.g. 30m, 1h).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    activation_key_ttl: std::time::Duration,
    /// Where backup chunks are kept: a directory, or s3://BUCKET/PREFIX for any
    /// S3-compatible store (endpoint and credentials from AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true for plain HTTP).
    /// Default: DATA/chunks.
    #[arg(long, value_parser = parse_chunks)]
    chunks: Option<bgw_chunks::ChunkStoreSpec>,
}

fn parse_chunks(value: &str) -> Result<bgw_chunks::ChunkStoreSpec, String> {
    bgw_chunks::ChunkStoreSpec::parse(value).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Release(command) => {
            return match cli_release::run(command) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bgw-cloud: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    };
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args.data,
        region: args.region,
        account_id: args.account_id,
        tls: match (args.tls_cert, args.tls_key, args.plain_http) {
            (_, _, true) => TlsMode::PlainHttp,
            (Some(cert), Some(key), false) => TlsMode::Files(TlsFiles { cert, key }),
            _ => TlsMode::SelfSigned,
        },
        throttle_rps: args.throttle_rps,
        throttle_burst: args.throttle_burst,
        activation_key_ttl: args.activation_key_ttl,
        chunks: args.chunks,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bgw-cloud: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bgw_cloud::serve(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bgw-cloud: {e}");
            ExitCode::from(2)
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
