use std::sync::Arc;

use bgw_protocol::heartbeat::{UpdateAttempt, UpdateResult};
use bgw_update::keys::KeyPair;
use bgw_update::{Manifest, Version};
use chrono::Utc;

use super::ReleaseShelf;
use crate::store::releases::MemoryReleases;

fn publish(shelf: &ReleaseShelf, dir: &std::path::Path, version: &str, key: &KeyPair) {
    let path = dir.join(format!("{version}.tar.gz"));
    std::fs::write(&path, format!("artifact {version}")).unwrap();
    let m = Manifest::for_file(Version::parse(version).unwrap(), &path).unwrap();
    shelf.publish(&m.sign(key), &path, Utc::now()).unwrap();
}

#[test]
fn the_newest_release_not_failed_before_is_offered() {
    let dir = tempfile::tempdir().unwrap();
    let shelf = ReleaseShelf::new(Arc::new(MemoryReleases::default()), dir.path().join("rel"));
    let key = KeyPair::generate(&mut rand::thread_rng());
    assert!(shelf.offer("gw", "1.0.0").unwrap().is_none());
    publish(&shelf, dir.path(), "1.1.0", &key);
    publish(&shelf, dir.path(), "1.10.0", &key);
    publish(&shelf, dir.path(), "1.2.0", &key);
    let offered = |running| shelf.offer("gw", running).unwrap().map(|r| r.version);
    assert_eq!(offered("1.0.0").as_deref(), Some("1.10.0"));
    assert_eq!(offered("1.10.0"), None);

    let attempt = |v: &str, result| UpdateAttempt {
        version: v.into(),
        started_at: Utc::now(),
        ended_at: Some(Utc::now()),
        result,
        reason: Some("EXITED: status 1".into()),
    };
    shelf
        .record_attempt("gw", &attempt("1.10.0", UpdateResult::RolledBack))
        .unwrap();
    assert_eq!(offered("1.0.0").as_deref(), Some("1.2.0"));
    // Another gateway is not affected by this one's failure.
    assert_eq!(
        shelf
            .offer("other", "1.0.0")
            .unwrap()
            .map(|r| r.version)
            .as_deref(),
        Some("1.10.0")
    );
    let history = shelf.history("gw").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].result, "ROLLED_BACK");
    let (_, path) = shelf.artifact("1.2.0").unwrap().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"artifact 1.2.0");
}

#[test]
fn a_release_that_does_not_match_its_artifact_or_is_unsigned_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shelf = ReleaseShelf::new(Arc::new(MemoryReleases::default()), dir.path().join("rel"));
    let key = KeyPair::generate(&mut rand::thread_rng());
    let path = dir.path().join("a.tar.gz");
    std::fs::write(&path, b"the artifact").unwrap();
    let m = Manifest::for_file(Version::parse("2.0.0").unwrap(), &path).unwrap();
    let mut unsigned = m.sign(&key);
    unsigned.signature.clear();
    assert!(shelf.publish(&unsigned, &path, Utc::now()).is_err());
    std::fs::write(&path, b"another artifact").unwrap();
    let err = shelf.publish(&m.sign(&key), &path, Utc::now()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(shelf.releases().unwrap().is_empty());
    std::fs::write(&path, b"the artifact").unwrap();
    shelf.publish(&m.sign(&key), &path, Utc::now()).unwrap();
    let again = shelf.publish(&m.sign(&key), &path, Utc::now()).unwrap_err();
    assert!(again.to_string().contains("already published"), "{again}");
}
