//! The AWS services the server speaks, each registered with its protocols, signing name,
//! operations (with their body limits) and handler.
//!
//! A request is routed to a service by the `X-Amz-Target` prefix (AWS JSON 1.0), the
//! `/service/<Service>/operation/<Operation>` path (Smithy RPC v2 CBOR) or a method and URI
//! template (REST-JSON), and its signature is verified with that service's signing name.
//! Adding a service is one [`Registry::register`] call:
//!
//! ```
//! use std::sync::Arc;
//! use bgw_cloud::api::wire::Protocol;
//! use bgw_cloud::registry::{AwsService, HandlerFuture, Registry, ServiceHandler};
//!
//! struct Vaults;
//! impl ServiceHandler for Vaults {
//!     fn call<'a>(&'a self, _op: &'a str, input: serde_json::Value) -> HandlerFuture<'a> {
//!         Box::pin(async move { Ok(input) })
//!     }
//! }
//!
//! let mut registry = Registry::new("us-east-1");
//! registry.register(
//!     AwsService::new("AWS Backup", "backup", Arc::new(Vaults))
//!         .protocol(Protocol::RestJson)
//!         .rest_operation("PUT", "/backup-vaults/{BackupVaultName}", "CreateBackupVault", None)
//!         .unwrap(),
//! );
//! let route = registry
//!     .route(&http::Method::PUT, "/backup-vaults/v1", &http::HeaderMap::new())
//!     .unwrap();
//! assert_eq!(route.service.signing_name(), "backup");
//! ```

pub mod backup;
pub mod backup_gateway;
mod rest;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bgw_sigv4::Verifier;
use http::{HeaderMap, Method};
use serde_json::Value;

pub use rest::{bind_members, PathTemplate};

use crate::api::error::{ApiError, ErrorKind};
use crate::api::wire::Protocol;
use crate::model::{Location, MemberBinding};

/// Largest request body of an operation that does not declare its own limit.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What a handler returns: the operation's output as a JSON-like value.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ApiError>> + Send + 'a>>;

/// Runs a service's operations on decoded, authenticated input.
pub trait ServiceHandler: Send + Sync {
    fn call<'a>(&'a self, operation: &'a str, input: Value) -> HandlerFuture<'a>;
}

/// One operation of a service.
#[derive(Debug, Clone)]
pub struct OperationSpec {
    pub name: String,
    /// The output shape, for encoders that follow the model.
    pub output: Option<String>,
    /// Largest request body accepted; longer bodies are answered 413.
    pub body_limit: usize,
    /// Status of a successful answer.
    pub status: u16,
    /// Input members read from the query string or headers (REST protocols).
    pub bindings: Vec<MemberBinding>,
}

#[derive(Debug, Clone)]
struct RestRoute {
    method: Method,
    template: PathTemplate,
    operation: String,
    /// URI label (as the template names it) -> input member.
    label_members: HashMap<String, String>,
}

/// A service as registered: how it is reached, how it is signed and who handles it.
pub struct AwsService {
    title: String,
    signing_name: String,
    target_prefix: Option<String>,
    protocols: Vec<Protocol>,
    operations: HashMap<String, OperationSpec>,
    rest_routes: Vec<RestRoute>,
    handler: Arc<dyn ServiceHandler>,
    verifier: Option<Verifier>,
}

impl AwsService {
    /// A service called `title` in error messages, signed as `signing_name`.
    pub fn new(
        title: impl Into<String>,
        signing_name: impl Into<String>,
        handler: Arc<dyn ServiceHandler>,
    ) -> Self {
        Self {
            title: title.into(),
            signing_name: signing_name.into(),
            target_prefix: None,
            protocols: Vec::new(),
            operations: HashMap::new(),
            rest_routes: Vec::new(),
            handler,
            verifier: None,
        }
    }

    /// The target prefix of the RPC protocols (`BackupOnPremises_v20210101`): the part before
    /// the dot in `X-Amz-Target`, and the service name in RPC v2 CBOR paths.
    pub fn target_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.target_prefix = Some(prefix.into());
        self
    }

    pub fn protocol(mut self, protocol: Protocol) -> Self {
        if !self.protocols.contains(&protocol) {
            self.protocols.push(protocol);
        }
        self
    }

    /// An operation of the RPC protocols.
    pub fn operation(mut self, name: &str, output: Option<&str>) -> Self {
        self.operations.insert(
            name.to_owned(),
            OperationSpec {
                name: name.to_owned(),
                output: output.map(str::to_owned),
                body_limit: DEFAULT_BODY_LIMIT,
                status: 200,
                bindings: Vec::new(),
            },
        );
        self
    }

    /// An operation of REST-JSON, reached by `method` and the URI `template`.
    pub fn rest_operation(
        self,
        method: &str,
        template: &str,
        name: &str,
        output: Option<&str>,
    ) -> Result<Self, String> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("{name}: {method:?} is not an HTTP method"))?;
        let template = PathTemplate::parse(template)?;
        let mut this = self.operation(name, output);
        this.rest_routes.push(RestRoute {
            method,
            template,
            operation: name.to_owned(),
            label_members: HashMap::new(),
        });
        Ok(this)
    }

    /// An operation of REST-JSON exactly as a botocore model describes it: method, URI
    /// template, labels, query-string and header members, and the success status.
    pub fn model_operation(self, op: &crate::model::Operation) -> Result<Self, String> {
        let http = op
            .http
            .as_ref()
            .ok_or_else(|| format!("{}: the model gives no HTTP binding", op.name))?;
        let mut this = self.rest_operation(
            &http.method,
            &http.request_uri,
            &op.name,
            op.output.as_deref(),
        )?;
        if let Some(route) = this.rest_routes.last_mut() {
            route.label_members = http
                .members
                .iter()
                .filter(|m| m.location == Location::Uri)
                .map(|m| (m.location_name.clone(), m.member.clone()))
                .collect();
        }
        if let Some(spec) = this.operations.get_mut(&op.name) {
            spec.status = http.response_code;
            spec.bindings = http
                .members
                .iter()
                .filter(|m| m.location != Location::Uri)
                .cloned()
                .collect();
        }
        Ok(this)
    }

    /// Sets the body limit of a registered operation.
    pub fn body_limit(mut self, operation: &str, bytes: usize) -> Self {
        if let Some(op) = self.operations.get_mut(operation) {
            op.body_limit = bytes;
        }
        self
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn signing_name(&self) -> &str {
        &self.signing_name
    }

    pub fn handler(&self) -> &dyn ServiceHandler {
        self.handler.as_ref()
    }

    /// The verifier for this service's signing name in the server's region.
    pub fn verifier(&self) -> &Verifier {
        self.verifier
            .as_ref()
            .expect("a registered service has a verifier")
    }

    fn speaks(&self, protocol: Protocol) -> bool {
        self.protocols.contains(&protocol)
    }

    fn operation_named(&self, name: &str) -> Result<&OperationSpec, ApiError> {
        self.operations.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorKind::UnknownOperation,
                format!("operation {name:?} is not part of the {}", self.title),
            )
        })
    }
}

/// Where a request goes.
pub struct Route<'a> {
    pub service: &'a AwsService,
    pub protocol: Protocol,
    /// The operation, or why there is none. The signature is checked first either way.
    pub operation: Result<&'a OperationSpec, ApiError>,
    /// Members bound by the URI template (REST only).
    pub labels: Vec<(String, String)>,
}

impl Route<'_> {
    /// Body limit of the operation (the default while it is unknown).
    pub fn body_limit(&self) -> usize {
        self.operation
            .as_ref()
            .map_or(DEFAULT_BODY_LIMIT, |op| op.body_limit)
    }

    pub fn operation_name(&self) -> Option<&str> {
        self.operation.as_ref().ok().map(|op| op.name.as_str())
    }
}

/// All registered services.
pub struct Registry {
    region: String,
    services: Vec<AwsService>,
}

impl Registry {
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            services: Vec::new(),
        }
    }

    /// Adds a service; its signatures are verified for the server's region.
    pub fn register(&mut self, mut service: AwsService) {
        service.verifier = Some(Verifier::new(&service.signing_name, &self.region));
        self.services.push(service);
    }

    pub fn services(&self) -> impl Iterator<Item = &AwsService> {
        self.services.iter()
    }

    fn by_prefix(&self, prefix: &str, protocol: Protocol) -> Option<&AwsService> {
        self.services
            .iter()
            .find(|s| s.speaks(protocol) && s.target_prefix.as_deref() == Some(prefix))
    }

    /// The first service speaking `protocol`: requests that name no known service are
    /// verified against it before they are told so.
    fn fallback(&self, protocol: Protocol) -> Option<&AwsService> {
        self.services.iter().find(|s| s.speaks(protocol))
    }

    fn prefixes(&self, protocol: Protocol) -> String {
        let names: Vec<&str> = self
            .services
            .iter()
            .filter(|s| s.speaks(protocol))
            .filter_map(|s| s.target_prefix.as_deref())
            .collect();
        names.join(" or ")
    }

    /// Routes a request, or `None` if no service serves this method and path.
    pub fn route(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Route<'_>> {
        if method == Method::POST && path == "/" {
            return self.route_json(headers);
        }
        if method == Method::POST {
            if let Some(rest) = path.strip_prefix("/service/") {
                if let Some((service, operation)) = rest.split_once("/operation/") {
                    return self.route_cbor(service, operation);
                }
            }
        }
        self.services.iter().find_map(|service| {
            service.rest_routes.iter().find_map(|r| {
                let labels = (r.method == method).then(|| r.template.matches(path))??;
                let labels = labels
                    .into_iter()
                    .map(|(label, value)| {
                        let member = r.label_members.get(&label).cloned().unwrap_or(label);
                        (member, value)
                    })
                    .collect();
                Some(Route {
                    service,
                    protocol: Protocol::RestJson,
                    operation: service.operation_named(&r.operation),
                    labels,
                })
            })
        })
    }

    fn route_json(&self, headers: &HeaderMap) -> Option<Route<'_>> {
        let protocol = Protocol::Json;
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        let found = target
            .and_then(|t| t.split_once('.'))
            .and_then(|(prefix, op)| Some((self.by_prefix(prefix, protocol)?, op)));
        if let Some((service, op)) = found {
            return Some(Route {
                service,
                protocol,
                operation: service.operation_named(op),
                labels: Vec::new(),
            });
        }
        let prefixes = self.prefixes(protocol);
        let message = match target {
            Some(t) => {
                format!("unknown operation {t:?}; operations are named {prefixes}.<Operation>")
            }
            None => format!("missing X-Amz-Target header ({prefixes}.<Operation>)"),
        };
        Some(Route {
            service: self.fallback(protocol)?,
            protocol,
            operation: Err(ApiError::new(ErrorKind::UnknownOperation, message)),
            labels: Vec::new(),
        })
    }

    fn route_cbor(&self, service_name: &str, op: &str) -> Option<Route<'_>> {
        let protocol = Protocol::Cbor;
        if let Some(service) = self.by_prefix(service_name, protocol) {
            return Some(Route {
                service,
                protocol,
                operation: service.operation_named(op),
                labels: Vec::new(),
            });
        }
        let message = format!(
            "unknown operation \"{service_name}.{op}\"; operations are named {}.<Operation>",
            self.prefixes(protocol)
        );
        Some(Route {
            service: self.fallback(protocol)?,
            protocol,
            operation: Err(ApiError::new(ErrorKind::UnknownOperation, message)),
            labels: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl ServiceHandler for Echo {
        fn call<'a>(&'a self, _: &'a str, input: Value) -> HandlerFuture<'a> {
            Box::pin(async move { Ok(input) })
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new("us-east-1");
        r.register(
            AwsService::new("AWS Backup Gateway API", "backup-gateway", Arc::new(Echo))
                .target_prefix("BackupOnPremises_v20210101")
                .protocol(Protocol::Cbor)
                .protocol(Protocol::Json)
                .operation("ListGateways", Some("ListGatewaysOutput")),
        );
        r.register(
            AwsService::new("AWS Backup API", "backup", Arc::new(Echo))
                .protocol(Protocol::RestJson)
                .rest_operation(
                    "PUT",
                    "/backup-vaults/{BackupVaultName}",
                    "CreateBackupVault",
                    None,
                )
                .unwrap()
                .rest_operation(
                    "GET",
                    "/backup-vaults/{BackupVaultName}",
                    "DescribeBackupVault",
                    None,
                )
                .unwrap()
                .body_limit("CreateBackupVault", 16),
        );
        r
    }

    fn headers(target: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", target.parse().unwrap());
        h
    }

    #[test]
    fn rpc_requests_go_to_the_service_named_by_their_target() {
        let r = registry();
        let route = r
            .route(
                &Method::POST,
                "/",
                &headers("BackupOnPremises_v20210101.ListGateways"),
            )
            .unwrap();
        assert_eq!(route.service.signing_name(), "backup-gateway");
        assert_eq!(route.protocol, Protocol::Json);
        assert_eq!(route.operation_name(), Some("ListGateways"));
        assert_eq!(route.body_limit(), DEFAULT_BODY_LIMIT);
        assert_eq!(route.service.verifier().service(), "backup-gateway");

        let route = r
            .route(
                &Method::POST,
                "/service/BackupOnPremises_v20210101/operation/ListGateways",
                &HeaderMap::new(),
            )
            .unwrap();
        assert_eq!(route.protocol, Protocol::Cbor);
        assert_eq!(route.operation_name(), Some("ListGateways"));

        // An unknown operation or target is still verified (as the first RPC service) first.
        for (path, h) in [
            ("/", headers("BackupOnPremises_v20210101.Nope")),
            ("/", headers("Other_v1.ListGateways")),
            ("/", HeaderMap::new()),
            ("/service/Other/operation/X", HeaderMap::new()),
        ] {
            let route = r.route(&Method::POST, path, &h).unwrap();
            assert_eq!(route.service.signing_name(), "backup-gateway");
            let err = route.operation.unwrap_err();
            assert_eq!(err.kind, ErrorKind::UnknownOperation, "{}", err.message);
        }
    }

    #[test]
    fn rest_requests_go_by_method_and_uri_template_with_their_own_signing_name() {
        let r = registry();
        let route = r
            .route(&Method::PUT, "/backup-vaults/vault-1", &HeaderMap::new())
            .unwrap();
        assert_eq!(route.service.signing_name(), "backup");
        assert_eq!(route.service.verifier().service(), "backup");
        assert_eq!(route.protocol, Protocol::RestJson);
        assert_eq!(route.operation_name(), Some("CreateBackupVault"));
        assert_eq!(
            route.labels,
            vec![("BackupVaultName".into(), "vault-1".into())]
        );
        assert_eq!(route.body_limit(), 16);

        let route = r
            .route(&Method::GET, "/backup-vaults/vault-1", &HeaderMap::new())
            .unwrap();
        assert_eq!(route.operation_name(), Some("DescribeBackupVault"));
        assert!(r
            .route(&Method::DELETE, "/backup-vaults/vault-1", &HeaderMap::new())
            .is_none());
        assert!(r
            .route(&Method::GET, "/nothing", &HeaderMap::new())
            .is_none());
    }
}
