//! vSphere tags on the simulator through the legacy `/rest` tagging API (vcsim 0.24 does not
//! serve `/api`).
//!
//! ```no_run
//! # async fn demo(vc: &bgw_tests::vcsim::Vcsim) -> bgw_tests::Result<()> {
//! use bgw_tests::vcsim_tags::{Cardinality, TagClient};
//! let tags = TagClient::login(vc).await?;
//! let category = tags.create_category("backup-policy", Cardinality::Single).await?;
//! let gold = tags.create_tag(&category, "gold").await?;
//! tags.attach_tag_to_vms(&gold, &["vm-55", "vm-58"]).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{HarnessError, Result};
use crate::vcsim::Vcsim;

/// Header carrying the REST session token.
pub const SESSION_HEADER: &str = "vmware-api-session-id";

/// How many tags of one category an object may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    Single,
    Multiple,
}

impl Cardinality {
    fn as_str(self) -> &'static str {
        match self {
            Cardinality::Single => "SINGLE",
            Cardinality::Multiple => "MULTIPLE",
        }
    }
}

/// A vSphere object as the tagging API names it, e.g. `{"type":"VirtualMachine","id":"vm-42"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl ObjectRef {
    /// A virtual machine by moref (`vm-42`).
    pub fn vm(moref: &str) -> Self {
        ObjectRef {
            kind: "VirtualMachine".into(),
            id: moref.into(),
        }
    }

    /// A folder by moref (`group-v3`).
    pub fn folder(moref: &str) -> Self {
        ObjectRef {
            kind: "Folder".into(),
            id: moref.into(),
        }
    }
}

/// A tag as `GET /rest/com/vmware/cis/tagging/tag/id:{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TagInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category_id: String,
}

/// A category as `GET /rest/com/vmware/cis/tagging/category/id:{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CategoryInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub cardinality: String,
}

/// A logged-in REST session on the simulator.
pub struct TagClient {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl std::fmt::Debug for TagClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagClient")
            .field("base", &self.base)
            .field("session", &"***")
            .finish()
    }
}

impl TagClient {
    /// Logs in with the simulator's credentials (`POST /rest/com/vmware/cis/session`).
    pub async fn login(vcsim: &Vcsim) -> Result<TagClient> {
        let http = vcsim.http_client()?;
        let base = format!("{}/rest", vcsim.base_url());
        let url = format!("{base}/com/vmware/cis/session");
        let response = http
            .post(&url)
            .basic_auth(vcsim.username(), Some(vcsim.password()))
            .send()
            .await
            .map_err(|source| HarnessError::Http {
                url: url.clone(),
                source,
            })?;
        let value = value_of(&url, response).await?;
        let session = value
            .as_str()
            .ok_or_else(|| HarnessError::Response {
                url: url.clone(),
                reason: format!("session token is not a string: {value}"),
            })?
            .to_string();
        Ok(TagClient {
            http,
            base,
            session,
        })
    }

    /// The session token (header `vmware-api-session-id`).
    pub fn session_id(&self) -> &str {
        &self.session
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{}", self.base, path);
        let mut request = self
            .http
            .request(method, &url)
            .header(SESSION_HEADER, &self.session);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|source| HarnessError::Http {
            url: url.clone(),
            source,
        })?;
        value_of(&url, response).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates a category for VMs (and folders) and returns its id.
    pub async fn create_category(&self, name: &str, cardinality: Cardinality) -> Result<String> {
        let body = json!({"create_spec": {
            "name": name,
            "description": format!("{name} (created by a test)"),
            "cardinality": cardinality.as_str(),
            "associable_types": ["VirtualMachine", "Folder"],
        }});
        let value = self.post("/com/vmware/cis/tagging/category", body).await?;
        string_value(&self.base, value)
    }

    /// Creates a tag in `category_id` and returns its id.
    pub async fn create_tag(&self, category_id: &str, name: &str) -> Result<String> {
        let body = json!({"create_spec": {
            "name": name,
            "description": "",
            "category_id": category_id,
        }});
        let value = self.post("/com/vmware/cis/tagging/tag", body).await?;
        string_value(&self.base, value)
    }

    /// Attaches one tag to many objects in one call (`attach-tag-to-multiple-objects`).
    pub async fn attach_tag(&self, tag_id: &str, objects: &[ObjectRef]) -> Result<()> {
        let path =
            format!("/com/vmware/cis/tagging/tag-association/id:{tag_id}?~action=attach-tag-to-multiple-objects");
        self.post(&path, json!({ "object_ids": objects })).await?;
        Ok(())
    }

    /// Attaches one tag to VMs given by moref.
    pub async fn attach_tag_to_vms(&self, tag_id: &str, vm_morefs: &[&str]) -> Result<()> {
        let objects: Vec<ObjectRef> = vm_morefs.iter().map(|m| ObjectRef::vm(m)).collect();
        self.attach_tag(tag_id, &objects).await
    }

    /// Detaches a tag from one object.
    pub async fn detach_tag(&self, tag_id: &str, object: &ObjectRef) -> Result<()> {
        let path = format!("/com/vmware/cis/tagging/tag-association/id:{tag_id}?~action=detach");
        self.post(&path, json!({ "object_id": object })).await?;
        Ok(())
    }

    /// Deletes a tag (and its associations).
    pub async fn delete_tag(&self, tag_id: &str) -> Result<()> {
        let path = format!("/com/vmware/cis/tagging/tag/id:{tag_id}");
        self.request(reqwest::Method::DELETE, &path, None).await?;
        Ok(())
    }

    /// Reads one tag.
    pub async fn get_tag(&self, tag_id: &str) -> Result<TagInfo> {
        let path = format!("/com/vmware/cis/tagging/tag/id:{tag_id}");
        let value = self.request(reqwest::Method::GET, &path, None).await?;
        parse(&self.base, value)
    }

    /// Reads one category.
    pub async fn get_category(&self, category_id: &str) -> Result<CategoryInfo> {
        let path = format!("/com/vmware/cis/tagging/category/id:{category_id}");
        let value = self.request(reqwest::Method::GET, &path, None).await?;
        parse(&self.base, value)
    }

    /// The tag ids attached to each object, in one batch call (`list-attached-tags-on-objects`).
    /// Objects without tags map to an empty list.
    pub async fn list_attached_tags(
        &self,
        objects: &[ObjectRef],
    ) -> Result<BTreeMap<ObjectRef, Vec<String>>> {
        #[derive(Deserialize)]
        struct Attached {
            object_id: ObjectRef,
            #[serde(default)]
            tag_ids: Option<Vec<String>>,
        }
        let path = "/com/vmware/cis/tagging/tag-association?~action=list-attached-tags-on-objects";
        let value = self.post(path, json!({ "object_ids": objects })).await?;
        let list: Vec<Attached> = if value.is_null() {
            Vec::new()
        } else {
            parse(&self.base, value)?
        };
        let mut map: BTreeMap<ObjectRef, Vec<String>> =
            objects.iter().map(|o| (o.clone(), Vec::new())).collect();
        for entry in list {
            let mut ids = entry.tag_ids.unwrap_or_default();
            ids.sort();
            map.insert(entry.object_id, ids);
        }
        Ok(map)
    }

    /// Ends the session.
    pub async fn logout(self) -> Result<()> {
        self.request(reqwest::Method::DELETE, "/com/vmware/cis/session", None)
            .await?;
        Ok(())
    }
}

/// Checks the status and unwraps the `{"value": …}` envelope (an empty body is `null`).
async fn value_of(url: &str, response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let body = response.text().await.map_err(|source| HarnessError::Http {
        url: url.to_string(),
        source,
    })?;
    if !status.is_success() {
        return Err(HarnessError::HttpStatus {
            url: url.to_string(),
            status: status.as_u16(),
            body,
        });
    }
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    let value: Value = serde_json::from_str(&body).map_err(|e| HarnessError::Response {
        url: url.to_string(),
        reason: format!("not JSON ({e}): {body}"),
    })?;
    Ok(value.get("value").cloned().unwrap_or(Value::Null))
}

fn string_value(url: &str, value: Value) -> Result<String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| HarnessError::Response {
            url: url.to_string(),
            reason: format!("expected an id string, got {value}"),
        })
}

fn parse<T: serde::de::DeserializeOwned>(url: &str, value: Value) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| HarnessError::Response {
        url: url.to_string(),
        reason: format!("{e}: {value}"),
    })
}
