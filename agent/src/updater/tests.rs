//! The update state machine without the network: offers checked and refused, artifacts
//! staged, the launcher's decision after a crash at every step, running jobs delaying the
//! apply.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bgw_protocol::heartbeat::{UpdateOffer, UpdateResult, UpdateState};
use bgw_update::keys::KeyPair;
use bgw_update::{Manifest, Refusal, Version};
use chrono::{TimeZone, Utc};

use super::launcher::{Launcher, Plan, Role};
use super::record::{Phase, RecordFile, Release, UpdateRecord};
use super::staging::Versions;
use super::Updater;
use crate::config::Config;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    key: KeyPair,
    config: Config,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate(&mut rand::thread_rng());
        let (_, public) = key.write(&dir.path().join("keys")).unwrap();
        let text = format!(
            "[cloud]\nendpoint = \"https://cloud:8443\"\nregion = \"us-east-1\"\n\
             [gateway]\nstate_dir = \"{}\"\n\
             [updates]\ntrusted_keys = [\"{}\"]\ntrial_deadline = \"30s\"\n",
            dir.path().join("state").display(),
            public.display()
        );
        let config = Config::parse(&text, &dir.path().join("agent.toml")).unwrap();
        Setup { dir, key, config }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn updater(&self, running: &str) -> Arc<Updater> {
        Updater::open_as(&self.config, running).unwrap()
    }

    fn offer(&self, manifest: &Manifest, key: &KeyPair) -> UpdateOffer {
        let signed = manifest.sign(key);
        UpdateOffer {
            version: manifest.version.to_string(),
            manifest: signed.manifest,
            key_id: signed.key_id,
            signature: signed.signature,
        }
    }

    fn release(&self, version: &str) -> Release {
        let manifest = Manifest::new(v(version), b"artifact");
        Release {
            signed: manifest.sign(&self.key),
            manifest,
        }
    }

    fn launcher(&self, own: &str, systemd: bool) -> Launcher {
        Launcher::with(
            &self.config,
            Path::new("/etc/bgw-agent/agent.toml"),
            v(own),
            Role::Launcher,
            systemd,
        )
    }

    /// Puts an agent binary for `version` where a staged version lives.
    fn stage_binary(&self, version: &str) {
        let dir = Versions::new(&self.state_dir()).dir(v(version));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bgw-agent"), "#!/bin/sh\n").unwrap();
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap()
}

fn refusal_of(updater: &Updater) -> String {
    let attempt = updater.status().last_attempt.expect("an attempt");
    assert_eq!(attempt.result, UpdateResult::Refused, "{attempt:?}");
    attempt.reason.unwrap_or_default()
}

#[test]
fn bad_offers_are_refused_with_their_reason_and_never_retried() {
    let s = Setup::new();
    let updater = s.updater("1.0.0");
    let running = v("1.0.0");
    let other = KeyPair::generate(&mut rand::thread_rng());
    let good = Manifest::new(v("1.1.0"), b"artifact");

    let mut unsigned = s.offer(&good, &s.key);
    unsigned.signature.clear();
    updater.consider(running, unsigned, now()).unwrap();
    assert!(refusal_of(&updater).starts_with("UNSIGNED"));

    let foreign = s.offer(&Manifest::new(v("1.2.0"), b"a"), &other);
    updater.consider(running, foreign, now()).unwrap();
    assert!(refusal_of(&updater).starts_with("UNTRUSTED_KEY"));

    let mut forged = s.offer(&Manifest::new(v("1.3.0"), b"a"), &other);
    forged.key_id = s.key.public().id();
    updater.consider(running, forged, now()).unwrap();
    assert!(refusal_of(&updater).starts_with("BAD_SIGNATURE"));

    let mut edited = s.offer(&Manifest::new(v("1.4.0"), b"a"), &s.key);
    edited.manifest = edited.manifest.replace("\"size\":1", "\"size\":2");
    updater.consider(running, edited, now()).unwrap();
    assert!(refusal_of(&updater).starts_with("BAD_SIGNATURE"));

    let older = s.offer(&Manifest::new(v("0.9.0"), b"a"), &s.key);
    updater.consider(running, older, now()).unwrap();
    assert!(refusal_of(&updater).starts_with("DOWNGRADE"));

    let mut needs_newer = Manifest::new(v("1.5.0"), b"a");
    needs_newer.min_version = Some(v("1.0.5"));
    updater
        .consider(running, s.offer(&needs_newer, &s.key), now())
        .unwrap();
    assert!(refusal_of(&updater).starts_with("TOO_OLD"));

    // The offer's version and the signed manifest's must agree.
    let mut renamed = s.offer(&Manifest::new(v("1.6.0"), b"a"), &s.key);
    renamed.version = "1.7.0".into();
    updater.consider(running, renamed, now()).unwrap();
    assert!(refusal_of(&updater).starts_with("MALFORMED"));

    let record = RecordFile::new(&s.state_dir()).load().unwrap();
    assert_eq!(record.phase, Phase::Idle);
    for refused in [
        "1.1.0", "1.2.0", "1.3.0", "1.4.0", "0.9.0", "1.5.0", "1.7.0",
    ] {
        assert!(record.rejected.contains(&v(refused)), "{refused}");
    }

    // A refused release offered again (now correctly signed) is not retried.
    updater
        .consider(running, s.offer(&good, &s.key), now())
        .unwrap();
    assert_eq!(updater.status().state, UpdateState::Idle);

    // A good one starts downloading, and the record survives a restart.
    let next = Manifest::new(v("2.0.0"), b"artifact");
    updater
        .consider(running, s.offer(&next, &s.key), now())
        .unwrap();
    let status = s.updater("1.0.0").status();
    assert_eq!(status.state, UpdateState::Downloading);
    let attempt = status.last_attempt.unwrap();
    assert_eq!(
        (attempt.version.as_str(), attempt.result),
        ("2.0.0", UpdateResult::InProgress)
    );
}

/// An artifact as `packaging/make-update-artifact` makes it, with a script for the agent.
fn artifact(dir: &Path, version: &str, reports: &str) -> Vec<u8> {
    let work = dir.join(format!("work-{version}"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("VERSION"), format!("{version}\n")).unwrap();
    std::fs::write(
        work.join("bgw-agent"),
        format!("#!/bin/sh\necho 'bgw-agent {reports}'\n"),
    )
    .unwrap();
    let out = dir.join(format!("{version}.tar.gz"));
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&work)
        .arg("-czf")
        .arg(&out)
        .args(["VERSION", "bgw-agent"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

#[tokio::test]
async fn a_verified_artifact_is_staged_whole_and_a_bad_one_is_refused() {
    let s = Setup::new();
    let versions = Versions::new(&s.state_dir());
    let put = |version: &str, bytes: &[u8]| {
        let path = versions.incoming(v(version));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };

    let good = artifact(s.dir.path(), "1.1.0", "1.1.0");
    put("1.1.0", &good);
    let manifest = Manifest::new(v("1.1.0"), &good);
    versions.stage(&manifest).await.unwrap().unwrap();
    assert!(versions.is_staged(v("1.1.0")));
    assert!(!versions.incoming(v("1.1.0")).exists());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(versions.binary(v("1.1.0")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o100, 0o100, "the staged agent is executable");
    }

    // Same size, one byte changed.
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    put("1.1.0", &tampered);
    assert!(matches!(
        versions.stage(&manifest).await.unwrap(),
        Err(Refusal::Tampered { .. })
    ));
    put("1.1.0", &good[..good.len() / 2]);
    assert!(matches!(
        versions.stage(&manifest).await.unwrap(),
        Err(Refusal::Truncated { .. })
    ));

    // Signed as 1.2.0, but the binary inside is another version.
    let mislabelled = artifact(s.dir.path(), "1.2.0", "1.0.0");
    put("1.2.0", &mislabelled);
    let refusal = versions
        .stage(&Manifest::new(v("1.2.0"), &mislabelled))
        .await
        .unwrap()
        .unwrap_err();
    assert!(refusal.to_string().contains("--version"), "{refusal}");
    assert!(!versions.dir(v("1.2.0")).exists());
    assert!(!s.state_dir().join("versions/1.2.0.partial").exists());
}

#[test]
fn after_a_crash_at_any_step_the_launcher_resumes_or_rolls_back() {
    let s = Setup::new();
    let launcher = s.launcher("1.0.0", false);
    let release = s.release("1.1.0");
    let plan = |record: &mut UpdateRecord| launcher.plan(record, now());

    // Before the switch the running version goes on (the daemon resumes the download or
    // the wait).
    for phase in [
        Phase::Idle,
        Phase::Downloading {
            release: release.clone(),
        },
        Phase::Staged {
            release: release.clone(),
        },
        Phase::Waiting {
            release: release.clone(),
            jobs_since: None,
        },
    ] {
        let mut record = UpdateRecord {
            phase: phase.clone(),
            ..Default::default()
        };
        assert_eq!(plan(&mut record), Plan::InProcess, "{phase:?}");
        assert_eq!(record.phase, phase, "nothing changes");
    }

    // Stopped to apply: the trial starts (supervised here; exec'ed under systemd).
    let applying = UpdateRecord {
        phase: Phase::Applying {
            release: release.clone(),
            previous: v("1.0.0"),
        },
        ..Default::default()
    };
    assert_eq!(plan(&mut applying.clone()), Plan::Supervise);
    let mut under_systemd = applying.clone();
    assert_eq!(
        s.launcher("1.0.0", true).plan(&mut under_systemd, now()),
        Plan::Exec(v("1.1.0"))
    );
    match under_systemd.phase {
        Phase::Verifying {
            deadline,
            started_at,
            ..
        } => assert_eq!((deadline - started_at).num_seconds(), 30),
        other => panic!("{other:?}"),
    }

    // Stopped during the trial (crash, hang, kill -9, power loss): rolled back for good.
    let mut trial = UpdateRecord {
        phase: Phase::Verifying {
            release: release.clone(),
            previous: v("1.0.0"),
            started_at: now(),
            deadline: now(),
        },
        last_attempt: Some(bgw_protocol::heartbeat::UpdateAttempt {
            version: "1.1.0".into(),
            started_at: now() - chrono::Duration::minutes(5),
            ended_at: None,
            result: UpdateResult::InProgress,
            reason: None,
        }),
        ..Default::default()
    };
    assert_eq!(plan(&mut trial), Plan::InProcess);
    assert!(matches!(trial.phase, Phase::RolledBack { version, .. } if version == v("1.1.0")));
    assert_eq!(trial.committed, Some(v("1.0.0")));
    assert!(trial.rejected.contains(&v("1.1.0")));
    let attempt = trial.last_attempt.unwrap();
    assert_eq!(attempt.result, UpdateResult::RolledBack);
    assert_eq!(attempt.started_at, now() - chrono::Duration::minutes(5));
    assert!(attempt
        .reason
        .unwrap()
        .contains("before it passed its trial"));

    // A committed newer version runs from versions/; the packaged one when it is gone or
    // when the packaged one is newer.
    let mut committed = UpdateRecord {
        phase: Phase::Committed {
            version: v("1.1.0"),
        },
        committed: Some(v("1.1.0")),
        ..Default::default()
    };
    assert_eq!(plan(&mut committed.clone()), Plan::InProcess, "not staged");
    s.stage_binary("1.1.0");
    assert_eq!(plan(&mut committed), Plan::Exec(v("1.1.0")));
    assert_eq!(
        s.launcher("1.2.0", false).plan(&mut committed, now()),
        Plan::InProcess
    );

    // A rollback to a staged previous version runs that one.
    s.stage_binary("1.0.5");
    let mut back = UpdateRecord {
        phase: Phase::Verifying {
            release,
            previous: v("1.0.5"),
            started_at: now(),
            deadline: now(),
        },
        committed: Some(v("1.0.5")),
        ..Default::default()
    };
    assert_eq!(plan(&mut back), Plan::Exec(v("1.0.5")));
}

#[test]
fn the_record_is_replaced_whole() {
    let s = Setup::new();
    let file = RecordFile::new(&s.state_dir());
    assert_eq!(file.load().unwrap(), UpdateRecord::default());
    let record = UpdateRecord {
        phase: Phase::Waiting {
            release: s.release("1.1.0"),
            jobs_since: Some(now()),
        },
        apply_now: true,
        ..Default::default()
    };
    file.save(&record).unwrap();
    assert_eq!(file.load().unwrap(), record);
    assert!(!file.path().with_extension("json.tmp").exists());
    std::fs::write(file.path(), b"{ not json").unwrap();
    let err = file.load().unwrap_err().to_string();
    assert!(err.contains("update-state.json"), "{err}");
}

#[tokio::test]
async fn running_backup_and_restore_jobs_count_a_metadata_sync_does_not() {
    let s = Setup::new();
    let store = crate::state::Store::open(&s.state_dir()).unwrap();
    let time = crate::clock::CloudTime::new(Arc::new(crate::clock::SystemClock));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let jobs = crate::jobs::JobRunner::start(
        crate::jobs::JobStore::new(store.tree("jobs").unwrap()),
        time,
        shutdown.clone(),
    )
    .unwrap();
    assert!(!Updater::jobs_running(&jobs));
    let (release_sync, sync_gate) = tokio::sync::oneshot::channel::<()>();
    let _sync = jobs
        .submit(
            crate::jobs::JobKind::MetadataSync,
            "vcenter",
            |_ctx| async move {
                let _ = sync_gate.await;
                (crate::jobs::JobOutcome::Succeeded(None), ())
            },
        )
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !Updater::jobs_running(&jobs),
        "a sync does not delay updates"
    );
    let (release_backup, gate) = tokio::sync::oneshot::channel::<()>();
    let backup = jobs
        .submit(crate::jobs::JobKind::Backup, "vm-1", |_ctx| async move {
            let _ = gate.await;
            (crate::jobs::JobOutcome::Succeeded(None), ())
        })
        .unwrap();
    assert!(Updater::jobs_running(&jobs));
    release_backup.send(()).unwrap();
    let _ = backup.done.await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!Updater::jobs_running(&jobs));
    let _ = release_sync.send(());
    shutdown.cancel();
}

#[tokio::test]
async fn a_running_backup_delays_the_apply_until_it_ends() {
    let s = Setup::new();
    let store = crate::state::Store::open(&s.state_dir()).unwrap();
    let time = crate::clock::CloudTime::new(Arc::new(crate::clock::SystemClock));
    let jobs_stop = tokio_util::sync::CancellationToken::new();
    let jobs = crate::jobs::JobRunner::start(
        crate::jobs::JobStore::new(store.tree("jobs").unwrap()),
        time.clone(),
        jobs_stop.clone(),
    )
    .unwrap();
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let ctx = super::Context {
        cloud: crate::cloud::CloudClient::new(&s.config.cloud, time.clone()).unwrap(),
        link: crate::cloud_link::CloudLink::load(store.clone(), metrics).unwrap(),
        config: crate::config_channel::ConfigChannel::new(Default::default()),
        time,
        timezone: crate::gateway_zone::GatewayZone::new(chrono_tz::UTC),
        jobs: jobs.clone(),
        admin: None,
    };
    let updater = s.updater("1.0.0");
    let release = s.release("1.1.0");
    updater
        .change(|r| {
            r.apply_now = true;
            r.phase = Phase::Waiting {
                release: release.clone(),
                jobs_since: None,
            };
        })
        .unwrap();
    let (finish, gate) = tokio::sync::oneshot::channel::<()>();
    let backup = jobs
        .submit(crate::jobs::JobKind::Backup, "vm-1", |_ctx| async move {
            let _ = gate.await;
            (crate::jobs::JobOutcome::Succeeded(None), ())
        })
        .unwrap();

    // Due (update now), but a backup runs: the update waits and notes since when.
    let daemon = tokio_util::sync::CancellationToken::new();
    updater.wake.notify_one();
    updater
        .wait(&ctx, release.clone(), None, &daemon)
        .await
        .unwrap();
    let since = match updater.record().phase {
        Phase::Waiting {
            jobs_since: Some(since),
            ..
        } => since,
        other => panic!("{other:?}"),
    };
    assert!(!daemon.is_cancelled(), "the daemon keeps running");
    assert_eq!(updater.status().state, UpdateState::Waiting);

    // The backup ends: the update applies (the daemon is asked to stop and restart into it).
    finish.send(()).unwrap();
    let _ = backup.done.await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    updater.wake.notify_one();
    updater
        .wait(&ctx, release, Some(since), &daemon)
        .await
        .unwrap();
    assert!(matches!(
        updater.record().phase,
        Phase::Applying { previous, .. } if previous == v("1.0.0")
    ));
    assert!(daemon.is_cancelled());
    assert_eq!(
        RecordFile::new(&s.state_dir())
            .load()
            .unwrap()
            .phase
            .wire_state(),
        UpdateState::Applying
    );
    jobs_stop.cancel();
}
