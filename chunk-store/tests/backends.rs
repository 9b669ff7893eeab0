//! Both chunk store backends through the same checks; the S3 one against a real S3 server
//! (`s3s-fs`, installed by `scripts/lib/tools.sh`'s `ensure_s3s_fs`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bgw_chunks::{ChunkHash, ChunkStore, ChunkStoreSpec, DirChunkStore};
use bytes::Bytes;
use futures::TryStreamExt;

async fn exercise(store: &dyn ChunkStore) {
    let a = Bytes::from_static(b"zstd frame of chunk a");
    let b = Bytes::from(vec![7u8; 3 * 1024 * 1024]);
    let ha = ChunkHash::of(b"raw a");
    let hb = ChunkHash::of(b"raw b");

    assert!(!store.has(&ha).await.unwrap());
    assert_eq!(store.get(&ha).await.unwrap(), None);
    assert!(store.put(&ha, a.clone()).await.unwrap(), "first put writes");
    assert!(
        !store.put(&ha, a.clone()).await.unwrap(),
        "second put finds it"
    );
    assert!(store.put(&hb, b.clone()).await.unwrap());
    assert!(store.has(&ha).await.unwrap());
    assert_eq!(store.get(&ha).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get(&hb).await.unwrap(), Some(b.clone()));

    let started = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut listed: Vec<_> = store.list().try_collect().await.unwrap();
    listed.sort_by(|x, y| x.hash.cmp(&y.hash));
    let mut want = vec![(ha.clone(), a.len() as u64), (hb.clone(), b.len() as u64)];
    want.sort();
    assert_eq!(
        listed
            .iter()
            .map(|i| (i.hash.clone(), i.size))
            .collect::<Vec<_>>(),
        want
    );
    assert!(listed.iter().all(|i| i.modified > started));

    store.delete(&ha).await.unwrap();
    store.delete(&ha).await.unwrap();
    assert!(!store.has(&ha).await.unwrap());
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].hash, hb);
}

#[tokio::test]
async fn directory_backend() {
    let dir = tempfile::tempdir().unwrap();
    // A write interrupted by a crash leaves a temporary file: it is removed at open.
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    std::fs::write(dir.path().join("tmp/leftover"), b"half").unwrap();
    let store = DirChunkStore::open(dir.path()).await.unwrap();
    assert!(!dir.path().join("tmp/leftover").exists());
    exercise(&store).await;
    // Fan-out layout: ab/cd/abcd…
    let h = ChunkHash::of(b"raw b");
    let s = h.as_str();
    assert!(dir.path().join(&s[0..2]).join(&s[2..4]).join(s).is_file());
    // Files that are not chunks are ignored by the listing.
    std::fs::write(
        dir.path().join(&s[0..2]).join(&s[2..4]).join("notes.txt"),
        b"x",
    )
    .unwrap();
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn spec_opens_a_directory_store() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ChunkStoreSpec::parse(dir.path().join("chunks").to_str().unwrap()).unwrap();
    let store = spec.open().await.unwrap();
    exercise(store.as_ref()).await;
    assert!(ChunkStoreSpec::parse("s3://").is_err());
    assert!(ChunkStoreSpec::parse("").is_err());
}

/// A running `s3s-fs` with one bucket, stopped when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
    _root: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3s_fs_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BGW_S3S_FS_BIN") {
        return Some(PathBuf::from(p));
    }
    let tools = std::env::var_os("BGW_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools"));
    let default = tools.join("s3s-fs/bin/s3s-fs");
    default.is_file().then_some(default)
}

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn start_s3(bin: &PathBuf, bucket: &str) -> S3Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(bucket)).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let endpoint = format!("http://127.0.0.1:{port}");
    // Ready when it accepts connections (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "s3s-fs did not listen on {endpoint} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    S3Server {
        child,
        endpoint,
        _root: root,
    }
}

#[tokio::test]
async fn s3_backend_against_a_real_s3_server() {
    let Some(bin) = s3s_fs_binary() else {
        if std::env::var("BGW_REQUIRE_S3").as_deref() == Ok("1") {
            panic!("BGW_REQUIRE_S3=1 but no s3s-fs binary: run scripts/test or set BGW_S3S_FS_BIN");
        }
        eprintln!(
            "\n*** SKIPPED: the S3 chunk store test needs s3s-fs (scripts/lib/tools.sh \
             ensure_s3s_fs, or BGW_S3S_FS_BIN); scripts/test installs it and requires it ***\n"
        );
        return;
    };
    let server = start_s3(&bin, "chunks");
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name("chunks")
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_virtual_hosted_style_request(false);
    let store =
        bgw_chunks::ObjectChunkStore::from_builder(store, "site-a", "s3://chunks/site-a").unwrap();
    exercise(&store).await;

    // The same through the environment, as `bgw-cloud --chunks s3://…` configures it.
    std::env::set_var("AWS_ENDPOINT_URL", &server.endpoint);
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let spec = ChunkStoreSpec::parse("s3://chunks/other-prefix").unwrap();
    let store = spec.open().await.unwrap();
    assert_eq!(store.location(), "s3://chunks/other-prefix");
    // The other prefix does not see site-a's chunk.
    assert!(!store.has(&ChunkHash::of(b"raw b")).await.unwrap());
    exercise(store.as_ref()).await;
}
