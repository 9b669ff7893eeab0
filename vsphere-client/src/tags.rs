//! vSphere tags through the Automation REST API: `/api` (vCenter 7.0 U2 and
//! later) with an automatic fallback to the legacy `/rest` endpoints.
//!
//! Categories and tags are listed once and cached by id; attachments for all
//! VMs come from batched `list-attached-tags-on-objects` calls of at most
//! [`MAX_BATCH`] objects.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{debug, info};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Largest number of objects per `list-attached-tags-on-objects` call.
pub const MAX_BATCH: usize = 2000;

const SESSION_HEADER: &str = "vmware-api-session-id";

/// Characters escaped in an id used as a path segment (ids look like
/// `urn:vmomi:InventoryServiceTag:<uuid>:GLOBAL`; `:` stays as it is).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Which REST flavour the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestFlavor {
    /// `/api/...`, bare JSON bodies (vCenter 7.0 U2+).
    Api,
    /// `/rest/com/vmware/cis/...`, bodies wrapped in `{"value": ...}`.
    Rest,
}

/// How many VMs a category allows per tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Cardinality {
    Single,
    Multiple,
}

/// A tag category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub description: String,
    pub cardinality: Cardinality,
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category_id: String,
}

/// The tag catalogue and the tags attached to each VM.
#[derive(Debug, Clone, Default)]
pub struct Tags {
    pub categories: HashMap<String, Category>,
    pub tags: HashMap<String, Tag>,
    /// VM moref (`vm-42`) → attached tag ids.
    pub attached: HashMap<String, Vec<String>>,
}

/// A tag attached to a VM, with its category resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachedTag {
    pub category: String,
    pub name: String,
    pub description: String,
}

impl Tags {
    /// The tags attached to a VM, sorted by category then name.
    pub fn of_vm(&self, moref: &str) -> Vec<AttachedTag> {
        let mut out: Vec<AttachedTag> = self
            .attached
            .get(moref)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tags.get(id))
            .map(|t| AttachedTag {
                category: self
                    .categories
                    .get(&t.category_id)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                name: t.name.clone(),
                description: t.description.clone(),
            })
            .collect();
        out.sort_by(|a, b| (&a.category, &a.name).cmp(&(&b.category, &b.name)));
        out
    }
}

#[derive(Default)]
pub(crate) struct TagState {
    session: Option<(RestFlavor, Secret)>,
    categories: HashMap<String, Category>,
    tags: HashMap<String, Tag>,
    loaded: bool,
}

#[derive(Deserialize)]
struct RawCategory {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    cardinality: String,
}

#[derive(Deserialize)]
struct RawTag {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category_id: String,
}

#[derive(Deserialize)]
struct RawAttached {
    object_id: RawObjectId,
    #[serde(default)]
    tag_ids: Option<Vec<String>>,
}

/// Some servers (and vcsim) send `null` for an empty list.
fn null_as_empty(v: Value) -> Value {
    if v.is_null() {
        Value::Array(Vec::new())
    } else {
        v
    }
}

#[derive(Deserialize)]
struct RawObjectId {
    id: String,
}

impl Client {
    /// The REST flavour in use, once a tagging session exists.
    pub async fn rest_flavor(&self) -> Option<RestFlavor> {
        self.inner
            .tags
            .lock()
            .await
            .session
            .as_ref()
            .map(|(f, _)| *f)
    }

    /// Tags attached to the given VMs (morefs like `vm-42`), with the catalogue.
    /// The catalogue is read once and cached; it is read again when an
    /// attachment names an unknown tag, or after [`Client::refresh_tags`].
    pub async fn tags_for(&self, vms: &[String]) -> Result<Tags> {
        let mut state = self.inner.tags.lock().await;
        if !state.loaded {
            self.load_catalogue(&mut state).await?;
        }
        let mut attached = HashMap::with_capacity(vms.len());
        for chunk in vms.chunks(MAX_BATCH) {
            let ids: Vec<Value> = chunk
                .iter()
                .map(|id| json!({"type": "VirtualMachine", "id": id}))
                .collect();
            let body = json!({ "object_ids": ids });
            let value = self
                .rest(
                    &mut state,
                    Method::POST,
                    Endpoint::ListAttachedOnObjects,
                    Some(&body),
                )
                .await?;
            let list: Vec<RawAttached> = serde_json::from_value(null_as_empty(value))
                .map_err(|e| Error::malformed(format!("list-attached-tags-on-objects: {e}")))?;
            for a in list {
                attached.insert(a.object_id.id, a.tag_ids.unwrap_or_default());
            }
        }
        let unknown = attached
            .values()
            .flatten()
            .any(|t| !state.tags.contains_key(t));
        if unknown {
            debug!("attachment names an unknown tag; re-reading the tag catalogue");
            self.load_catalogue(&mut state).await?;
        }
        Ok(Tags {
            categories: state.categories.clone(),
            tags: state.tags.clone(),
            attached,
        })
    }

    /// Tags of every VM in the inventory (one cheap VM listing plus the tag calls).
    pub async fn tags(&self) -> Result<Tags> {
        let morefs = self.vm_morefs().await?;
        self.tags_for(&morefs).await
    }

    /// Forgets the cached catalogue so the next call reads it again.
    pub async fn refresh_tags(&self) {
        self.inner.tags.lock().await.loaded = false;
    }

    async fn load_catalogue(&self, state: &mut TagState) -> Result<()> {
        let ids = self
            .rest(state, Method::GET, Endpoint::Categories, None)
            .await?;
        let ids: Vec<String> = serde_json::from_value(null_as_empty(ids))
            .map_err(|e| Error::malformed(format!("category list: {e}")))?;
        let mut categories = HashMap::new();
        for id in ids {
            let v = self
                .rest(state, Method::GET, Endpoint::Category(&id), None)
                .await?;
            let c: RawCategory = serde_json::from_value(v)
                .map_err(|e| Error::malformed(format!("category {id}: {e}")))?;
            let cardinality = if c.cardinality.eq_ignore_ascii_case("single") {
                Cardinality::Single
            } else {
                Cardinality::Multiple
            };
            let id = if c.id.is_empty() { id } else { c.id };
            categories.insert(
                id.clone(),
                Category {
                    id,
                    name: c.name,
                    description: c.description,
                    cardinality,
                },
            );
        }
        let ids = self.rest(state, Method::GET, Endpoint::Tags, None).await?;
        let ids: Vec<String> = serde_json::from_value(null_as_empty(ids))
            .map_err(|e| Error::malformed(format!("tag list: {e}")))?;
        let mut tags = HashMap::new();
        for id in ids {
            let v = self
                .rest(state, Method::GET, Endpoint::Tag(&id), None)
                .await?;
            let t: RawTag = serde_json::from_value(v)
                .map_err(|e| Error::malformed(format!("tag {id}: {e}")))?;
            let id = if t.id.is_empty() { id } else { t.id };
            tags.insert(
                id.clone(),
                Tag {
                    id,
                    name: t.name,
                    description: t.description,
                    category_id: t.category_id,
                },
            );
        }
        info!(
            categories = categories.len(),
            tags = tags.len(),
            "tag catalogue read"
        );
        state.categories = categories;
        state.tags = tags;
        state.loaded = true;
        Ok(())
    }

    /// Logs in to the REST API: `/api` first, `/rest` when `/api` is not served.
    async fn rest_login(&self) -> Result<(RestFlavor, Secret)> {
        let t = &self.inner.t;
        let user = self.inner.session.username();
        let pass = self.inner.session.password().expose();
        // `/api` exists since vCenter 7.0 U2: ask older servers `/rest` first.
        let order = if api_at_least(&self.inner.sc.api_version, (7, 0, 2)) {
            [RestFlavor::Api, RestFlavor::Rest]
        } else {
            [RestFlavor::Rest, RestFlavor::Api]
        };
        for flavor in order {
            let url = t
                .base
                .join(Endpoint::Session.path(flavor))
                .expect("static path");
            t.count_request();
            let resp = t
                .http()
                .post(url)
                .basic_auth(user, Some(pass))
                .send()
                .await
                .map_err(|e| t.map_http_error(e))?;
            let status = resp.status();
            if flavor != order[1]
                && (status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED)
            {
                debug!(?flavor, "REST flavour not served; trying the other one");
                continue;
            }
            let body = crate::transport::read_limited(resp, 1 << 20, t).await?;
            let value = rest_result(flavor, status, &body)?;
            let token = value
                .as_str()
                .ok_or_else(|| Error::malformed("REST session answer is not a string"))?;
            return Ok((flavor, Secret::new(token)));
        }
        Err(Error::NotFound {
            object: "vSphere Automation API".into(),
            message: "neither /api nor /rest is served".into(),
        })
    }

    async fn rest(
        &self,
        state: &mut TagState,
        method: Method,
        endpoint: Endpoint<'_>,
        body: Option<&Value>,
    ) -> Result<Value> {
        let t = &self.inner.t;
        for attempt in 0..2 {
            if state.session.is_none() {
                state.session = Some(self.rest_login().await?);
            }
            let (flavor, token) = state.session.clone().expect("session set above");
            let url = t
                .base
                .join(&endpoint.path_owned(flavor))
                .expect("valid path");
            let mut req = t
                .http()
                .request(method.clone(), url)
                .header(SESSION_HEADER, token.expose());
            if let Some(b) = body {
                req = req.json(b);
            }
            t.count_request();
            let resp = req.send().await.map_err(|e| t.map_http_error(e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                debug!("REST session expired; logging in again");
                state.session = None;
                continue;
            }
            let bytes =
                crate::transport::read_limited(resp, t.limits.max_tree_bytes as u64, t).await?;
            return rest_result(flavor, status, &bytes);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// VM morefs only: one view, one retrieval without properties.
    async fn vm_morefs(&self) -> Result<Vec<String>> {
        let i = &self.inner;
        i.session
            .with_session(&i.t, &i.sc, |tok| async move {
                let view = self.inventory_view(&tok).await?;
                let spec =
                    crate::soap::view_filter_spec(&view, &[("VirtualMachine", &[])], "specSet");
                let mut out = Vec::new();
                let mut body = crate::soap::call(
                    "RetrievePropertiesEx",
                    &i.sc.property_collector,
                    &format!("{spec}<options><maxObjects>10000</maxObjects></options>"),
                );
                let res: Result<()> = async {
                    loop {
                        let resp = self.call_with(&tok, body).await?;
                        let Some(rv) = resp.child("returnval") else {
                            return Ok(());
                        };
                        out.extend(
                            rv.children_named("objects")
                                .filter_map(|o| o.child("obj"))
                                .map(|o| o.text.trim().to_string()),
                        );
                        let Some(token) = rv.child_text("token") else {
                            return Ok(());
                        };
                        body = crate::soap::call(
                            "ContinueRetrievePropertiesEx",
                            &i.sc.property_collector,
                            &crate::soap::text_arg("token", token),
                        );
                    }
                }
                .await;
                res.map(|_| std::mem::take(&mut out))
            })
            .await
    }
}

/// Whether a vim25 `apiVersion` such as `7.0.3.0` is at least `min`.
fn api_at_least(version: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= min
}

/// Ends the REST session, if any.
pub(crate) async fn logout(client: &Client) -> Result<()> {
    let mut state = client.inner.tags.lock().await;
    let Some((flavor, token)) = state.session.take() else {
        return Ok(());
    };
    let t = &client.inner.t;
    let url = t
        .base
        .join(Endpoint::Session.path(flavor))
        .expect("static path");
    t.count_request();
    let resp = t
        .http()
        .delete(url)
        .header(SESSION_HEADER, token.expose())
        .send()
        .await
        .map_err(|e| t.map_http_error(e))?;
    let status = resp.status();
    if status.is_success() || status == StatusCode::UNAUTHORIZED {
        Ok(())
    } else {
        Err(Error::Fault {
            name: format!("HTTP {status}"),
            message: "REST logout failed".into(),
        })
    }
}

enum Endpoint<'a> {
    Session,
    Categories,
    Category(&'a str),
    Tags,
    Tag(&'a str),
    ListAttachedOnObjects,
}

impl Endpoint<'_> {
    fn path(&self, flavor: RestFlavor) -> &'static str {
        match (self, flavor) {
            (Endpoint::Session, RestFlavor::Api) => "api/session",
            (Endpoint::Session, RestFlavor::Rest) => "rest/com/vmware/cis/session",
            _ => unreachable!("only static paths here"),
        }
    }

    fn path_owned(&self, flavor: RestFlavor) -> String {
        let enc = |id: &str| percent_encoding::utf8_percent_encode(id, PATH_SEGMENT).to_string();
        match (self, flavor) {
            (Endpoint::Session, f) => Endpoint::Session.path(f).to_string(),
            (Endpoint::Categories, RestFlavor::Api) => "api/cis/tagging/category".into(),
            (Endpoint::Categories, RestFlavor::Rest) => {
                "rest/com/vmware/cis/tagging/category".into()
            }
            (Endpoint::Category(id), RestFlavor::Api) => {
                format!("api/cis/tagging/category/{}", enc(id))
            }
            (Endpoint::Category(id), RestFlavor::Rest) => {
                format!("rest/com/vmware/cis/tagging/category/id:{}", enc(id))
            }
            (Endpoint::Tags, RestFlavor::Api) => "api/cis/tagging/tag".into(),
            (Endpoint::Tags, RestFlavor::Rest) => "rest/com/vmware/cis/tagging/tag".into(),
            (Endpoint::Tag(id), RestFlavor::Api) => format!("api/cis/tagging/tag/{}", enc(id)),
            (Endpoint::Tag(id), RestFlavor::Rest) => {
                format!("rest/com/vmware/cis/tagging/tag/id:{}", enc(id))
            }
            (Endpoint::ListAttachedOnObjects, RestFlavor::Api) => {
                "api/cis/tagging/tag-association?action=list-attached-tags-on-objects".into()
            }
            (Endpoint::ListAttachedOnObjects, RestFlavor::Rest) => {
                "rest/com/vmware/cis/tagging/tag-association?~action=list-attached-tags-on-objects"
                    .into()
            }
        }
    }
}

/// Unwraps a REST answer, mapping error statuses to typed errors.
fn rest_result(flavor: RestFlavor, status: StatusCode, body: &[u8]) -> Result<Value> {
    let value: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Error::malformed(format!("REST answer (HTTP {status}) is not JSON: {e}"))
        })?
    };
    if status.is_success() {
        return Ok(match flavor {
            RestFlavor::Api => value,
            RestFlavor::Rest => value.get("value").cloned().unwrap_or(Value::Null),
        });
    }
    let (name, message) = rest_error(&value);
    Err(match status {
        StatusCode::UNAUTHORIZED => Error::Authentication {
            message: format!("tagging API: {message}"),
        },
        StatusCode::FORBIDDEN => Error::Privilege {
            message: format!("tagging API: {message}"),
            privilege: None,
        },
        StatusCode::NOT_FOUND => Error::NotFound {
            object: "tagging resource".into(),
            message,
        },
        _ => Error::Fault { name, message },
    })
}

/// `{"error_type": "...", "messages": [...]}` (/api) or
/// `{"type": "...", "value": {"messages": [...]}}` (/rest).
fn rest_error(v: &Value) -> (String, String) {
    let name = v
        .get("error_type")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("error")
        .to_string();
    let messages = v
        .get("messages")
        .or_else(|| v.get("value").and_then(|x| x.get("messages")))
        .and_then(Value::as_array);
    let message = messages
        .and_then(|m| m.first())
        .and_then(|m| m.get("default_message"))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_string();
    (name, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(api_at_least("7.0.2.0", (7, 0, 2)));
        assert!(api_at_least("8.0.1.0", (7, 0, 2)));
        assert!(api_at_least("7.0.10", (7, 0, 2)));
        assert!(!api_at_least("7.0.1.1", (7, 0, 2)));
        assert!(!api_at_least("6.5", (7, 0, 2)));
        assert!(!api_at_least("", (7, 0, 2)));
    }

    #[test]
    fn rest_answers_unwrap_and_errors_are_typed() {
        let v = rest_result(RestFlavor::Rest, StatusCode::OK, br#"{"value":["a"]}"#).unwrap();
        assert_eq!(v, serde_json::json!(["a"]));
        let v = rest_result(RestFlavor::Api, StatusCode::OK, br#"["a"]"#).unwrap();
        assert_eq!(v, serde_json::json!(["a"]));
        let e = rest_result(
            RestFlavor::Api,
            StatusCode::FORBIDDEN,
            br#"{"error_type":"UNAUTHORIZED","messages":[{"default_message":"no privilege"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Privilege);
        assert!(e.to_string().contains("no privilege"));
    }
}
