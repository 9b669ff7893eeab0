//! Tags on gateways, hypervisors and virtual machines.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::semantics::{self, TagInput, MAX_TAGS};
use super::ApiContext;

#[derive(Deserialize)]
pub struct TagInputs {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    #[serde(rename = "Tags")]
    tags: Vec<TagInput>,
}

pub async fn tag(ctx: &ApiContext, input: TagInputs) -> Result<Value, ApiError> {
    let tags = semantics::tags("Tags", &input.tags)?;
    ctx.store
        .tag_resource(&input.resource_arn, &tags, MAX_TAGS)?;
    Ok(json!({ "ResourceARN": input.resource_arn }))
}

#[derive(Deserialize)]
pub struct UntagInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    #[serde(rename = "TagKeys")]
    tag_keys: Vec<String>,
}

pub async fn untag(ctx: &ApiContext, input: UntagInput) -> Result<Value, ApiError> {
    semantics::tag_keys(&input.tag_keys)?;
    ctx.store
        .untag_resource(&input.resource_arn, &input.tag_keys)?;
    Ok(json!({ "ResourceARN": input.resource_arn }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    resource_arn: String,
}

pub async fn list(ctx: &ApiContext, input: ListInput) -> Result<Value, ApiError> {
    let tags = ctx.store.get_tags(&input.resource_arn)?;
    let list: Vec<Value> = tags
        .into_iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    Ok(json!({ "ResourceArn": input.resource_arn, "Tags": list }))
}
