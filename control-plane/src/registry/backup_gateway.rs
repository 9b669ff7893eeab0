//! The AWS Backup Gateway API (2021-01-01) as a registered service: both RPC protocols of its
//! botocore model, signing name `backup-gateway`, handlers in [`crate::api`].

use std::sync::Arc;

use serde_json::Value;

use super::{AwsService, HandlerFuture, ServiceHandler};
use crate::api::wire::Protocol;
use crate::api::ApiContext;
use crate::model::{model, TARGET_PREFIX};

/// SigV4 signing name of the AWS Backup Gateway API (also used for the admin paths).
pub const SIGNING_NAME: &str = "backup-gateway";

struct Handler(ApiContext);

impl ServiceHandler for Handler {
    fn call<'a>(&'a self, operation: &'a str, input: Value) -> HandlerFuture<'a> {
        Box::pin(crate::api::dispatch(&self.0, operation, input))
    }
}

/// The service, every operation of the model with the default 1 MiB body limit.
pub fn service(ctx: ApiContext) -> AwsService {
    let mut service = AwsService::new(
        "AWS Backup Gateway API",
        SIGNING_NAME,
        Arc::new(Handler(ctx)),
    )
    .target_prefix(TARGET_PREFIX)
    .protocol(Protocol::Cbor)
    .protocol(Protocol::Json);
    for op in model().operations.values() {
        service = service.operation(&op.name, op.output.as_deref());
    }
    service
}
