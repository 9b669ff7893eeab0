//! The AWS Backup API (2018-11-15) operations this control plane serves, for gateway VMs.
//!
//! Each handler validates its input against the botocore model, reads it into a typed input,
//! calls the [`BackupService`] and shapes the answer as the model's output.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::service::{
    BackupJobFilter, BackupService, RestoreJobFilter, StartBackup, StartRestore, RESOURCE_TYPE,
};
use crate::api::error::{ApiError, ErrorKind};
use crate::api::pagination::page_size;
use crate::api::{compact, epoch};
use crate::registry::{HandlerFuture, ServiceHandler};
use crate::store::backup::{BackupJobRecord, RecoveryPointRecord, RestoreJobRecord, VaultRecord};

/// The operations served, as the model names them.
pub const OPERATIONS: &[&str] = &[
    "CreateBackupVault",
    "ListBackupVaults",
    "DescribeBackupVault",
    "DeleteBackupVault",
    "StartBackupJob",
    "DescribeBackupJob",
    "ListBackupJobs",
    "StopBackupJob",
    "ListRecoveryPointsByBackupVault",
    "ListRecoveryPointsByResource",
    "DescribeRecoveryPoint",
    "DeleteRecoveryPoint",
    "GetRecoveryPointRestoreMetadata",
    "StartRestoreJob",
    "DescribeRestoreJob",
    "ListRestoreJobs",
];

/// The handler registered for the AWS Backup service.
pub struct BackupApi(pub Arc<BackupService>);

impl ServiceHandler for BackupApi {
    fn call<'a>(&'a self, operation: &'a str, input: Value) -> HandlerFuture<'a> {
        Box::pin(dispatch(&self.0, operation, input))
    }
}

/// Validates and runs one operation.
pub async fn dispatch(
    service: &Arc<BackupService>,
    op: &str,
    input: Value,
) -> Result<Value, ApiError> {
    let model = crate::model::backup_model();
    let operation = model.operations.get(op).ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnknownOperation,
            format!("operation {op:?} is not part of the AWS Backup API"),
        )
    })?;
    if let Some(shape) = &operation.input {
        crate::api::validate::validate_in(model, shape, &input).map_err(as_backup_error)?;
    }
    run(service, op, input)
}

/// AWS Backup names its validation errors after what is wrong.
fn as_backup_error(e: ApiError) -> ApiError {
    if e.kind != ErrorKind::Validation {
        return e;
    }
    let kind = if e.message.contains("Member must not be null") {
        ErrorKind::MissingParameterValue
    } else {
        ErrorKind::InvalidParameterValue
    };
    ApiError::new(kind, e.message)
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ApiError> {
    serde_json::from_value(input)
        .map_err(|e| ApiError::serialization(format!("cannot read the request: {e}")))
}

fn run(service: &Arc<BackupService>, op: &str, input: Value) -> Result<Value, ApiError> {
    match op {
        "CreateBackupVault" => create_vault(service, parse(input)?),
        "ListBackupVaults" => list_vaults(service, parse(input)?),
        "DescribeBackupVault" => describe_vault(service, parse(input)?),
        "DeleteBackupVault" => {
            let input: VaultName = parse(input)?;
            service.delete_vault(&input.backup_vault_name)?;
            Ok(json!({}))
        }
        "StartBackupJob" => start_backup(service, parse(input)?),
        "DescribeBackupJob" => {
            let input: BackupJobId = parse(input)?;
            Ok(backup_job(
                service,
                &service.backup_job(&input.backup_job_id)?,
            ))
        }
        "ListBackupJobs" => list_backup_jobs(service, parse(input)?),
        "StopBackupJob" => {
            let input: BackupJobId = parse(input)?;
            service.stop_backup(&input.backup_job_id)?;
            Ok(json!({}))
        }
        "ListRecoveryPointsByBackupVault" => list_points_in_vault(service, parse(input)?),
        "ListRecoveryPointsByResource" => list_points_of_resource(service, parse(input)?),
        "DescribeRecoveryPoint" => {
            let input: PointInVault = parse(input)?;
            let point =
                service.recovery_point(&input.backup_vault_name, &input.recovery_point_arn)?;
            Ok(describe_point(&point))
        }
        "DeleteRecoveryPoint" => {
            let input: PointInVault = parse(input)?;
            service.delete_recovery_point(&input.backup_vault_name, &input.recovery_point_arn)?;
            Ok(json!({}))
        }
        "GetRecoveryPointRestoreMetadata" => {
            let input: PointInVault = parse(input)?;
            let vault = service.vault(&input.backup_vault_name)?;
            let metadata =
                service.restore_metadata(&input.backup_vault_name, &input.recovery_point_arn)?;
            Ok(json!({
                "BackupVaultArn": vault.arn,
                "RecoveryPointArn": input.recovery_point_arn,
                "RestoreMetadata": metadata,
                "ResourceType": RESOURCE_TYPE,
            }))
        }
        "StartRestoreJob" => start_restore(service, parse(input)?),
        "DescribeRestoreJob" => {
            let input: RestoreJobId = parse(input)?;
            Ok(restore_job(
                service,
                &service.restore_job(&input.restore_job_id)?,
            ))
        }
        "ListRestoreJobs" => list_restore_jobs(service, parse(input)?),
        other => Err(ApiError::new(
            ErrorKind::UnknownOperation,
            format!(
                "operation {other:?} of the AWS Backup API is not served here; served: {}",
                OPERATIONS.join(", ")
            ),
        )),
    }
}

// ---- paging --------------------------------------------------------------------------------

fn token(list: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1|{list}|{key}"))
}

fn after_token(list: &str, next: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(next) = next else { return Ok(None) };
    let invalid = || {
        ApiError::new(
            ErrorKind::InvalidParameterValue,
            format!("NextToken is not valid for this list: pass the NextToken of the previous {list} page unchanged"),
        )
    };
    let text = URL_SAFE_NO_PAD
        .decode(next)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let mut parts = text.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(l), Some(key)) if l == list => Ok(Some(key.to_owned())),
        _ => Err(invalid()),
    }
}

/// One page of `items` (in their order), resuming after the item whose key the token names.
fn page<T>(
    list: &str,
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
    next: Option<&str>,
    max_results: Option<i64>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let after = after_token(list, next)?;
    let start = match &after {
        Some(k) => items
            .iter()
            .position(|i| key(i) == k)
            .map_or(items.len(), |p| p + 1),
        None => 0,
    };
    let size = page_size(max_results);
    let more = items.len() > start + size;
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = if more {
        page.last().map(|i| token(list, key(i)))
    } else {
        None
    };
    Ok((page, next))
}

fn time(seconds: Option<f64>) -> Option<DateTime<Utc>> {
    seconds.and_then(|s| Utc.timestamp_millis_opt((s * 1000.0) as i64).single())
}

// ---- vaults --------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VaultName {
    backup_vault_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateVaultInput {
    backup_vault_name: String,
    #[serde(default)]
    backup_vault_tags: BTreeMap<String, String>,
    encryption_key_arn: Option<String>,
    creator_request_id: Option<String>,
}

fn create_vault(service: &BackupService, input: CreateVaultInput) -> Result<Value, ApiError> {
    let vault = service.create_vault(
        &input.backup_vault_name,
        input.encryption_key_arn,
        input.creator_request_id,
        input.backup_vault_tags,
    )?;
    Ok(json!({
        "BackupVaultName": vault.name,
        "BackupVaultArn": vault.arn,
        "CreationDate": epoch(vault.created),
    }))
}

fn vault_json(vault: &VaultRecord, points: usize) -> Value {
    compact(json!({
        "BackupVaultName": vault.name,
        "BackupVaultArn": vault.arn,
        "VaultType": "BACKUP_VAULT",
        "CreationDate": epoch(vault.created),
        "EncryptionKeyArn": vault.encryption_key_arn,
        "CreatorRequestId": vault.creator_request_id,
        "NumberOfRecoveryPoints": points,
        "Locked": false,
    }))
}

fn describe_vault(service: &BackupService, input: VaultName) -> Result<Value, ApiError> {
    let vault = service.vault(&input.backup_vault_name)?;
    let points = service.recovery_point_count(&vault.name)?;
    Ok(vault_json(&vault, points))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn list_vaults(service: &BackupService, input: ListInput) -> Result<Value, ApiError> {
    let (vaults, next) = page(
        "backup-vaults",
        service.vaults()?,
        |(v, _)| v.name.as_str(),
        input.next_token.as_deref(),
        input.max_results,
    )?;
    let list: Vec<Value> = vaults.iter().map(|(v, n)| vault_json(v, *n)).collect();
    Ok(compact(json!({"BackupVaultList": list, "NextToken": next})))
}

// ---- backup jobs ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BackupJobId {
    backup_job_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartBackupInput {
    backup_vault_name: String,
    resource_arn: String,
    iam_role_arn: String,
    idempotency_token: Option<String>,
}

fn start_backup(service: &Arc<BackupService>, input: StartBackupInput) -> Result<Value, ApiError> {
    let job = service.start_backup(StartBackup {
        vault_name: input.backup_vault_name,
        resource_arn: input.resource_arn,
        iam_role_arn: input.iam_role_arn,
        idempotency_token: input.idempotency_token,
    })?;
    Ok(json!({
        "BackupJobId": job.job_id,
        "RecoveryPointArn": job.recovery_point_arn,
        "CreationDate": epoch(job.created),
        "IsParent": false,
    }))
}

fn percent(p: f64) -> String {
    format!("{p:.1}")
}

fn backup_job(service: &BackupService, job: &BackupJobRecord) -> Value {
    compact(json!({
        "AccountId": service.arns.account_id,
        "BackupJobId": job.job_id,
        "BackupVaultName": job.vault_name,
        "BackupVaultArn": job.vault_arn,
        "RecoveryPointArn": job.recovery_point_arn,
        "ResourceArn": job.resource_arn,
        "ResourceName": job.resource_name,
        "ResourceType": RESOURCE_TYPE,
        "CreationDate": epoch(job.created),
        "StartBy": epoch(job.created + chrono::Duration::hours(8)),
        "CompletionDate": job.completed.map(epoch),
        "State": job.state.as_str(),
        "StatusMessage": job.status_message,
        "PercentDone": percent(job.percent_done),
        "BackupSizeInBytes": job.backup_size_bytes,
        "BytesTransferred": job.bytes_transferred,
        "IamRoleArn": job.iam_role_arn,
        "BackupType": "",
        "IsParent": false,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBackupJobsInput {
    next_token: Option<String>,
    max_results: Option<i64>,
    by_resource_arn: Option<String>,
    by_state: Option<String>,
    by_backup_vault_name: Option<String>,
    by_created_before: Option<f64>,
    by_created_after: Option<f64>,
    by_resource_type: Option<String>,
    by_complete_before: Option<f64>,
    by_complete_after: Option<f64>,
}

fn list_backup_jobs(
    service: &BackupService,
    input: ListBackupJobsInput,
) -> Result<Value, ApiError> {
    let jobs = service.backup_jobs(&BackupJobFilter {
        resource_arn: input.by_resource_arn,
        state: input.by_state,
        vault_name: input.by_backup_vault_name,
        created_before: time(input.by_created_before),
        created_after: time(input.by_created_after),
        resource_type: input.by_resource_type,
        complete_before: time(input.by_complete_before),
        complete_after: time(input.by_complete_after),
    })?;
    let (jobs, next) = page(
        "backup-jobs",
        jobs,
        |j| j.job_id.as_str(),
        input.next_token.as_deref(),
        input.max_results,
    )?;
    let list: Vec<Value> = jobs.iter().map(|j| backup_job(service, j)).collect();
    Ok(compact(json!({"BackupJobs": list, "NextToken": next})))
}

// ---- recovery points -----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PointInVault {
    backup_vault_name: String,
    recovery_point_arn: String,
}

fn point_json(p: &RecoveryPointRecord) -> Value {
    json!({
        "RecoveryPointArn": p.arn,
        "BackupVaultName": p.vault_name,
        "BackupVaultArn": p.vault_arn,
        "ResourceArn": p.resource_arn,
        "ResourceType": RESOURCE_TYPE,
        "ResourceName": p.resource_name,
        "IamRoleArn": p.iam_role_arn,
        "Status": p.status.as_str(),
        "CreationDate": epoch(p.created),
        "CompletionDate": epoch(p.completed),
        "BackupSizeInBytes": p.backup_size_bytes,
        "IsEncrypted": false,
        "IsParent": false,
        "VaultType": "BACKUP_VAULT",
    })
}

fn describe_point(p: &RecoveryPointRecord) -> Value {
    let mut v = point_json(p);
    v["StorageClass"] = json!("WARM");
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPointsInVaultInput {
    backup_vault_name: String,
    next_token: Option<String>,
    max_results: Option<i64>,
    by_resource_arn: Option<String>,
    by_resource_type: Option<String>,
    by_created_before: Option<f64>,
    by_created_after: Option<f64>,
}

fn list_points_in_vault(
    service: &BackupService,
    input: ListPointsInVaultInput,
) -> Result<Value, ApiError> {
    let (before, after) = (time(input.by_created_before), time(input.by_created_after));
    let points: Vec<RecoveryPointRecord> = service
        .recovery_points_in(&input.backup_vault_name)?
        .into_iter()
        .filter(|p| {
            input
                .by_resource_arn
                .as_ref()
                .is_none_or(|r| &p.resource_arn == r)
                && input
                    .by_resource_type
                    .as_ref()
                    .is_none_or(|t| t == RESOURCE_TYPE)
                && before.is_none_or(|t| p.created < t)
                && after.is_none_or(|t| p.created > t)
        })
        .collect();
    let (points, next) = page(
        "recovery-points",
        points,
        |p| p.arn.as_str(),
        input.next_token.as_deref(),
        input.max_results,
    )?;
    let list: Vec<Value> = points.iter().map(point_json).collect();
    Ok(compact(json!({"RecoveryPoints": list, "NextToken": next})))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPointsOfResourceInput {
    resource_arn: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn list_points_of_resource(
    service: &BackupService,
    input: ListPointsOfResourceInput,
) -> Result<Value, ApiError> {
    let (points, next) = page(
        "resource-recovery-points",
        service.recovery_points_of(&input.resource_arn)?,
        |p| p.arn.as_str(),
        input.next_token.as_deref(),
        input.max_results,
    )?;
    let list: Vec<Value> = points
        .iter()
        .map(|p| {
            json!({
                "RecoveryPointArn": p.arn,
                "CreationDate": epoch(p.created),
                "Status": p.status.as_str(),
                "BackupSizeBytes": p.backup_size_bytes,
                "BackupVaultName": p.vault_name,
                "IsParent": false,
                "ResourceName": p.resource_name,
                "VaultType": "BACKUP_VAULT",
            })
        })
        .collect();
    Ok(compact(json!({"RecoveryPoints": list, "NextToken": next})))
}

// ---- restore jobs --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreJobId {
    restore_job_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartRestoreInput {
    recovery_point_arn: String,
    metadata: BTreeMap<String, String>,
    iam_role_arn: Option<String>,
    idempotency_token: Option<String>,
    resource_type: Option<String>,
}

fn start_restore(
    service: &Arc<BackupService>,
    input: StartRestoreInput,
) -> Result<Value, ApiError> {
    if let Some(t) = input
        .resource_type
        .as_deref()
        .filter(|t| *t != RESOURCE_TYPE)
    {
        return Err(ApiError::new(
            ErrorKind::InvalidParameterValue,
            format!(
                "ResourceType {t:?} is not served here; gateway VMs restore as {RESOURCE_TYPE}"
            ),
        ));
    }
    let job = service.start_restore(StartRestore {
        recovery_point_arn: input.recovery_point_arn,
        metadata: input.metadata,
        iam_role_arn: input.iam_role_arn,
        idempotency_token: input.idempotency_token,
    })?;
    Ok(json!({"RestoreJobId": job.job_id}))
}

fn restore_job(service: &BackupService, job: &RestoreJobRecord) -> Value {
    compact(json!({
        "AccountId": service.arns.account_id,
        "RestoreJobId": job.job_id,
        "RecoveryPointArn": job.recovery_point_arn,
        "CreationDate": epoch(job.created),
        "CompletionDate": job.completed.map(epoch),
        "Status": job.state.as_str(),
        "StatusMessage": job.status_message,
        "PercentDone": percent(job.percent_done),
        "BackupSizeInBytes": job.backup_size_bytes,
        "IamRoleArn": job.iam_role_arn,
        "CreatedResourceArn": job.created_resource_arn,
        "ResourceType": RESOURCE_TYPE,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRestoreJobsInput {
    next_token: Option<String>,
    max_results: Option<i64>,
    by_status: Option<String>,
    by_created_before: Option<f64>,
    by_created_after: Option<f64>,
    by_complete_before: Option<f64>,
    by_complete_after: Option<f64>,
    by_resource_type: Option<String>,
}

fn list_restore_jobs(
    service: &BackupService,
    input: ListRestoreJobsInput,
) -> Result<Value, ApiError> {
    let jobs = service.restore_jobs(&RestoreJobFilter {
        status: input.by_status,
        created_before: time(input.by_created_before),
        created_after: time(input.by_created_after),
        complete_before: time(input.by_complete_before),
        complete_after: time(input.by_complete_after),
        resource_type: input.by_resource_type,
    })?;
    let (jobs, next) = page(
        "restore-jobs",
        jobs,
        |j| j.job_id.as_str(),
        input.next_token.as_deref(),
        input.max_results,
    )?;
    let list: Vec<Value> = jobs.iter().map(|j| restore_job(service, j)).collect();
    Ok(compact(json!({"RestoreJobs": list, "NextToken": next})))
}
