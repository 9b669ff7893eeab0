//! `bgw-cloud` keeps everything across a restart on the same data directory,
//! and refuses a data directory it cannot use with a clear error, never a panic.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::{run_suite, Client, CloudServer, Protocol};

#[test]
fn restart_keeps_everything() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("var/lib/bgw-cloud");
    let snapshot = tmp.path().join("snapshot.json");
    let snapshot_arg = snapshot.to_str().expect("UTF-8 path");

    let mut first = CloudServer::start_on(&data, tmp.path(), &[]);
    let creds_mode = fs::metadata(first.credentials_file())
        .expect("admin-credentials written on first start")
        .permissions()
        .mode();
    assert_eq!(
        creds_mode & 0o777,
        0o600,
        "admin-credentials must be 0600, is {:o}",
        creds_mode & 0o777
    );
    let cert = fs::read(first.ca_bundle()).expect("tls/cert.pem written on first start");
    let creds = fs::read(first.credentials_file()).expect("admin-credentials");
    run_suite(
        &first,
        Client::Current,
        Protocol::Json,
        "persistence.py",
        &["populate", snapshot_arg],
        &[],
        1,
    );
    let status = first.stop();
    assert!(
        status.success(),
        "bgw-cloud exited {status} on SIGTERM; log:\n{}",
        first.log()
    );

    let second = CloudServer::start_on(&data, tmp.path(), &[]);
    assert_eq!(
        fs::read(second.ca_bundle()).expect("certificate"),
        cert,
        "the certificate must survive a restart"
    );
    assert_eq!(
        fs::read(second.credentials_file()).expect("credentials"),
        creds,
        "the admin credentials must survive a restart"
    );
    run_suite(
        &second,
        Client::Current,
        Protocol::Cbor,
        "persistence.py",
        &["verify", snapshot_arg],
        &[],
        1,
    );
}

fn refused(data: &std::path::Path, log_dir: &std::path::Path, what: &str) -> String {
    match CloudServer::try_start_on(data, log_dir, &[]) {
        Ok(mut server) => {
            server.stop();
            panic!("bgw-cloud started on {what}; it must refuse");
        }
        Err(failure) => {
            let status = failure.status.expect("bgw-cloud exits instead of hanging");
            assert!(!status.success(), "bgw-cloud exited 0 on {what}");
            assert!(
                !failure.log.contains("panicked") && status.code() != Some(101),
                "bgw-cloud panicked on {what}:\n{}",
                failure.log
            );
            let text = format!("{}\n{}", failure.stdout, failure.log);
            println!("{what}: {text}");
            text
        }
    }
}

#[test]
fn data_dir_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("not-a-dir");
    fs::write(&data, "some file").expect("write file");
    let text = refused(&data, tmp.path(), "a data directory that is a file");
    assert!(
        text.contains("not-a-dir"),
        "the error must name the data directory:\n{text}"
    );
}

#[test]
fn data_dir_with_a_foreign_tls_entry_is_refused() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).expect("data dir");
    // `tls` should be a directory holding the certificate; here it is a plain file.
    fs::write(data.join("tls"), "foreign").expect("write file");
    let text = refused(
        &data,
        tmp.path(),
        "a data directory whose tls entry is a file",
    );
    assert!(
        text.contains("tls"),
        "the error must name the path it could not use:\n{text}"
    );
}

#[test]
fn second_server_on_the_same_dir_is_refused() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    let mut first = CloudServer::start_on(&data, tmp.path(), &[]);
    refused(&data, tmp.path(), "a data directory already in use");
    assert!(first.is_running(), "the first server must keep running");
}
