//! The AWS Backup API (2018-11-15) as a registered service: REST-JSON, signing name
//! `backup`, the operations of [`crate::backup::api::OPERATIONS`] bound exactly as the
//! botocore model binds them (URI templates, query-string members, status codes).

use std::sync::Arc;

use super::AwsService;
use crate::api::wire::Protocol;
use crate::backup::api::{BackupApi, OPERATIONS};
use crate::backup::BackupService;
use crate::model::backup_model;

/// SigV4 signing name of the AWS Backup API.
pub const SIGNING_NAME: &str = "backup";

pub fn service(backup: Arc<BackupService>) -> Result<AwsService, String> {
    let mut service = AwsService::new("AWS Backup API", SIGNING_NAME, Arc::new(BackupApi(backup)))
        .protocol(Protocol::RestJson);
    let model = backup_model();
    for name in OPERATIONS {
        let op = model
            .operations
            .get(*name)
            .ok_or_else(|| format!("the AWS Backup model has no operation {name}"))?;
        service = service.model_operation(op)?;
    }
    Ok(service)
}
