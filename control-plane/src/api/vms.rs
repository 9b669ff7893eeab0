//! Virtual machine operations. VMs are written by gateways' metadata syncs (and by the admin
//! seeding path); the API only reads them.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::pagination::{decode_token, encode_token, page_size};
use super::{compact, epoch, ApiContext};
use crate::store::VmRecord;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetInput {
    resource_arn: String,
}

fn summary(vm: &VmRecord) -> Value {
    compact(json!({
        "ResourceArn": vm.arn,
        "Name": vm.name,
        "Path": vm.path,
        "HostName": vm.host_name,
        "HypervisorId": vm.hypervisor_arn,
        "LastBackupDate": vm.last_backup.map(epoch),
    }))
}

pub async fn get(ctx: &ApiContext, input: GetInput) -> Result<Value, ApiError> {
    let vm = ctx.store.get_vm(&input.resource_arn)?;
    let mut details = summary(&vm);
    let tags: Vec<Value> = vm
        .vmware_tags
        .iter()
        .map(|t| {
            compact(json!({
                "VmwareCategory": t.category,
                "VmwareTagName": t.name,
                "VmwareTagDescription": t.description,
            }))
        })
        .collect();
    details["VmwareTags"] = Value::Array(tags);
    Ok(json!({ "VirtualMachine": details }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    hypervisor_arn: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn list(ctx: &ApiContext, input: ListInput) -> Result<Value, ApiError> {
    let after = decode_token("virtual-machines", input.next_token.as_deref())?;
    if let Some(hv) = &input.hypervisor_arn {
        ctx.store.get_hypervisor(hv)?;
    }
    let (items, last) = ctx.store.list_vms(
        input.hypervisor_arn.as_deref(),
        after.as_deref(),
        page_size(input.max_results),
    )?;
    let vms: Vec<Value> = items.iter().map(summary).collect();
    Ok(compact(json!({
        "VirtualMachines": vms,
        "NextToken": last.map(|a| encode_token("virtual-machines", &a)),
    })))
}
