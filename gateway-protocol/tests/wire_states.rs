//! Every state on the wire keeps its spelling, and an unknown value from another version is
//! handled as docs/gateway-protocol.md says: kept as sent (open fields) or refused by name.

use bgw_protocol::activation::GatewayType;
use bgw_protocol::commands::{CommandOutcome, TestStage};
use bgw_protocol::heartbeat::{UpdateState, UpdateStatus};
use bgw_protocol::metadata::{SyncStatus, SyncStatusReport};
use serde_json::json;

#[test]
fn update_states_keep_their_wire_names() {
    let all = [
        (UpdateState::Idle, "IDLE"),
        (UpdateState::Downloading, "DOWNLOADING"),
        (UpdateState::Staged, "STAGED"),
        (UpdateState::Applying, "APPLYING"),
        (UpdateState::Verifying, "VERIFYING"),
        (UpdateState::RolledBack, "ROLLED_BACK"),
    ];
    for (state, wire) in all {
        assert_eq!(serde_json::to_value(&state).unwrap(), json!(wire));
        assert_eq!(
            serde_json::from_value::<UpdateState>(json!(wire)).unwrap(),
            state
        );
    }
    assert_eq!(UpdateStatus::default().state, UpdateState::Idle);
}

#[test]
fn an_update_state_from_a_newer_agent_is_kept_as_sent() {
    let status: UpdateStatus =
        serde_json::from_value(json!({"state": "REBOOTING", "availableVersion": "2.0.0"})).unwrap();
    assert_eq!(status.state, UpdateState::Unknown("REBOOTING".into()));
    assert_eq!(status.state.to_string(), "REBOOTING");
    assert_eq!(serde_json::to_value(&status).unwrap()["state"], "REBOOTING");
}

#[test]
fn sync_statuses_keep_their_wire_names() {
    let all = [
        (SyncStatus::Created, "CREATED"),
        (SyncStatus::Running, "RUNNING"),
        (SyncStatus::Failed, "FAILED"),
        (SyncStatus::PartiallyFailed, "PARTIALLY_FAILED"),
        (SyncStatus::Succeeded, "SUCCEEDED"),
    ];
    for (status, wire) in all {
        assert_eq!(serde_json::to_value(status).unwrap(), json!(wire));
        assert_eq!(
            serde_json::from_value::<SyncStatus>(json!(wire)).unwrap(),
            status
        );
    }
}

#[test]
fn an_unknown_sync_status_is_refused_by_name() {
    let report = json!({
        "hypervisorArn": "arn:aws:backup-gateway:eu-west-1:123456789012:hypervisor/hype-1",
        "syncId": "s1",
        "status": "PAUSED",
        "at": "2026-01-01T00:00:00Z",
    });
    let err = serde_json::from_value::<SyncStatusReport>(report)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown sync status \"PAUSED\""), "{err}");
    assert!(err.contains("PARTIALLY_FAILED"), "{err}");
}

#[test]
fn test_stages_keep_their_wire_names_and_tolerate_new_ones() {
    let failed = CommandOutcome::Failed {
        stage: TestStage::Authentication,
        message: "bad password".into(),
    };
    assert_eq!(
        serde_json::to_value(&failed).unwrap(),
        json!({"status": "FAILED", "stage": "AUTHENTICATION", "message": "bad password"})
    );
    for wire in TestStage::KNOWN {
        let stage: TestStage = serde_json::from_value(json!(wire)).unwrap();
        assert!(!matches!(stage, TestStage::Unknown(_)), "{wire}");
        assert_eq!(stage.as_str(), *wire);
    }
    let newer: CommandOutcome =
        serde_json::from_value(json!({"status": "FAILED", "stage": "PROXY", "message": "m"}))
            .unwrap();
    assert_eq!(
        newer,
        CommandOutcome::Failed {
            stage: TestStage::Unknown("PROXY".into()),
            message: "m".into()
        }
    );
}

#[test]
fn gateway_type_keeps_its_wire_name() {
    assert_eq!(
        serde_json::to_value(&GatewayType::BackupVm).unwrap(),
        json!("BACKUP_VM")
    );
    assert_eq!(
        serde_json::from_value::<GatewayType>(json!("FILE_S3")).unwrap(),
        GatewayType::Unknown("FILE_S3".into())
    );
}
