//! Hypervisor operations: import, details, updates, property mappings, metadata sync.
//!
//! Credentials are stored (wrapped as secrets) for the gateway to use; they are never
//! returned by any operation nor logged.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::pagination::{decode_token, encode_token, page_size};
use super::semantics::{self, TagInput};
use super::{compact, epoch, ApiContext};
use crate::arn::ResourceKind;
use crate::secret::Secret;
use crate::store::{HypervisorRecord, HypervisorState, PropertyMapping, StoreError, SyncStatus};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportInput {
    name: String,
    host: String,
    username: Option<String>,
    password: Option<String>,
    kms_key_arn: Option<String>,
    #[serde(default)]
    tags: Vec<TagInput>,
}

pub async fn import(ctx: &ApiContext, input: ImportInput) -> Result<Value, ApiError> {
    let tags = semantics::tags("Tags", &input.tags)?;
    let arn = ctx
        .arns
        .mint(ResourceKind::Hypervisor, &mut rand::thread_rng());
    let record = HypervisorRecord {
        arn: arn.clone(),
        name: input.name,
        host: input.host,
        username: input.username.map(Secret::new),
        password: input.password.map(Secret::new),
        kms_key_arn: input.kms_key_arn,
        log_group_arn: None,
        state: HypervisorState::Pending,
        sync_status: None,
        sync_message: None,
        last_successful_sync: None,
        property_mappings: Vec::new(),
        iam_role_arn: None,
        gateway_arn: None,
    };
    ctx.store.insert_hypervisor(&record, &tags)?;
    tracing::info!(hypervisor = %arn, host = %record.host, "hypervisor imported");
    Ok(json!({ "HypervisorArn": arn }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HypervisorArnInput {
    hypervisor_arn: String,
}

pub async fn get(ctx: &ApiContext, input: HypervisorArnInput) -> Result<Value, ApiError> {
    let hv = ctx.store.get_hypervisor(&input.hypervisor_arn)?;
    Ok(compact(json!({
        "Hypervisor": {
            "HypervisorArn": hv.arn,
            "Name": hv.name,
            "Host": hv.host,
            "KmsKeyArn": hv.kms_key_arn,
            "LogGroupArn": hv.log_group_arn,
            "State": hv.state.as_str(),
            "LastSuccessfulMetadataSyncTime": hv.last_successful_sync.map(epoch),
            "LatestMetadataSyncStatus": hv.sync_status.map(SyncStatus::as_str),
            "LatestMetadataSyncStatusMessage": hv.sync_message,
        }
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn list(ctx: &ApiContext, input: ListInput) -> Result<Value, ApiError> {
    let after = decode_token("hypervisors", input.next_token.as_deref())?;
    let (items, last) = ctx
        .store
        .list_hypervisors(after.as_deref(), page_size(input.max_results))?;
    let hypervisors: Vec<Value> = items
        .into_iter()
        .map(|hv| {
            compact(json!({
                "HypervisorArn": hv.arn,
                "Name": hv.name,
                "Host": hv.host,
                "KmsKeyArn": hv.kms_key_arn,
                "State": hv.state.as_str(),
            }))
        })
        .collect();
    Ok(compact(json!({
        "Hypervisors": hypervisors,
        "NextToken": last.map(|a| encode_token("hypervisors", &a)),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateInput {
    hypervisor_arn: String,
    host: Option<String>,
    username: Option<String>,
    password: Option<String>,
    name: Option<String>,
    log_group_arn: Option<String>,
}

pub async fn update(ctx: &ApiContext, input: UpdateInput) -> Result<Value, ApiError> {
    ctx.store.update_hypervisor(&input.hypervisor_arn, |hv| {
        if let Some(host) = &input.host {
            hv.host = host.clone();
        }
        if let Some(u) = &input.username {
            hv.username = Some(Secret::new(u.clone()));
        }
        if let Some(p) = &input.password {
            hv.password = Some(Secret::new(p.clone()));
        }
        if let Some(n) = &input.name {
            hv.name = n.clone();
        }
        if let Some(l) = &input.log_group_arn {
            // An empty string clears the log group (the model allows it).
            hv.log_group_arn = Some(l.clone()).filter(|l| !l.is_empty());
        }
        Ok(())
    })?;
    Ok(json!({ "HypervisorArn": input.hypervisor_arn }))
}

pub async fn delete(ctx: &ApiContext, input: HypervisorArnInput) -> Result<Value, ApiError> {
    ctx.store.delete_hypervisor(&input.hypervisor_arn)?;
    tracing::info!(hypervisor = %input.hypervisor_arn, "hypervisor deleted");
    Ok(json!({ "HypervisorArn": input.hypervisor_arn }))
}

pub async fn get_mappings(ctx: &ApiContext, input: HypervisorArnInput) -> Result<Value, ApiError> {
    let hv = ctx.store.get_hypervisor(&input.hypervisor_arn)?;
    let mappings: Vec<Value> = hv
        .property_mappings
        .iter()
        .map(|m| {
            json!({
                "VmwareCategory": m.vmware_category,
                "VmwareTagName": m.vmware_tag_name,
                "AwsTagKey": m.aws_tag_key,
                "AwsTagValue": m.aws_tag_value,
            })
        })
        .collect();
    Ok(compact(json!({
        "HypervisorArn": hv.arn,
        "VmwareToAwsTagMappings": mappings,
        "IamRoleArn": hv.iam_role_arn,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappingInput {
    vmware_category: String,
    vmware_tag_name: String,
    aws_tag_key: String,
    aws_tag_value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMappingsInput {
    hypervisor_arn: String,
    vmware_to_aws_tag_mappings: Vec<MappingInput>,
    iam_role_arn: String,
}

pub async fn put_mappings(ctx: &ApiContext, input: PutMappingsInput) -> Result<Value, ApiError> {
    semantics::property_mapping_count(input.vmware_to_aws_tag_mappings.len())?;
    for (i, m) in input.vmware_to_aws_tag_mappings.iter().enumerate() {
        if m.aws_tag_key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::validation(format!(
                "VmwareToAwsTagMappings[{i}].AwsTagKey {:?}: tag keys starting with \"aws:\" are reserved for AWS use",
                m.aws_tag_key
            )));
        }
    }
    let mappings: Vec<PropertyMapping> = input
        .vmware_to_aws_tag_mappings
        .into_iter()
        .map(|m| PropertyMapping {
            vmware_category: m.vmware_category,
            vmware_tag_name: m.vmware_tag_name,
            aws_tag_key: m.aws_tag_key,
            aws_tag_value: m.aws_tag_value,
        })
        .collect();
    ctx.store.update_hypervisor(&input.hypervisor_arn, |hv| {
        hv.property_mappings = mappings.clone();
        hv.iam_role_arn = Some(input.iam_role_arn.clone());
        Ok(())
    })?;
    Ok(json!({ "HypervisorArn": input.hypervisor_arn }))
}

/// Records a requested sync and tells the gateway that serves the hypervisor. A hypervisor
/// that no gateway serves is refused: nothing would ever run the sync.
pub async fn start_sync(ctx: &ApiContext, input: HypervisorArnInput) -> Result<Value, ApiError> {
    let hv = ctx.store.update_hypervisor(&input.hypervisor_arn, |hv| {
        let Some(gw) = &hv.gateway_arn else {
            return Err(StoreError::Conflict(format!(
                "no gateway serves hypervisor {}: associate a gateway with it first \
                 (AssociateGatewayToServer), then start the sync",
                hv.arn
            )));
        };
        hv.sync_status = Some(SyncStatus::Created);
        hv.sync_message = Some(format!("sync requested; waiting for gateway {gw}"));
        Ok(())
    })?;
    ctx.link
        .metadata_sync_requested(hv.gateway_arn.as_deref(), &hv.arn);
    Ok(json!({ "HypervisorArn": input.hypervisor_arn }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::dispatch;
    use crate::api::error::ErrorKind;

    fn context(dir: &std::path::Path) -> ApiContext {
        ApiContext {
            store: crate::store::Store::open(dir).unwrap(),
            arns: crate::arn::ArnFactory::new("us-east-1", "123456789012"),
            clock: Arc::new(crate::clock::SystemClock),
            link: Arc::new(crate::link::RecordOnly),
        }
    }

    #[tokio::test]
    async fn a_sync_of_a_hypervisor_no_gateway_serves_is_refused_naming_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let hv = dispatch(
            &ctx,
            "ImportHypervisorConfiguration",
            json!({"Name": "vc", "Host": "vc.example.com"}),
        )
        .await
        .unwrap()["HypervisorArn"]
            .as_str()
            .unwrap()
            .to_string();
        let err = dispatch(
            &ctx,
            "StartVirtualMachinesMetadataSync",
            json!({ "HypervisorArn": hv }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{}", err.message);
        assert!(
            err.message.contains("associate a gateway"),
            "{}",
            err.message
        );
        let stored = ctx.store.get_hypervisor(&hv).unwrap();
        assert_eq!(
            stored.sync_status, None,
            "nothing recorded for a refused sync"
        );
    }
}
