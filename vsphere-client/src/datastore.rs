//! Datastore files over HTTPS: `https://vcenter/folder/PATH?dcPath=DC&dsName=DS`, with the
//! SOAP session's cookie. GET takes `Range`, PUT replaces a whole file. This is the data path
//! vCenter and ESXi serve to any client (and what the simulator serves too).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use bytes::Bytes;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::soap::MoRef;

/// A file on a datastore, as vSphere writes it: `[datastore1] web01/web01.vmdk`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DatastorePath {
    pub datastore: String,
    /// Path inside the datastore, `/`-separated, without a leading `/`.
    pub path: String,
}

impl DatastorePath {
    pub fn new(datastore: impl Into<String>, path: impl Into<String>) -> Self {
        DatastorePath {
            datastore: datastore.into(),
            path: path.into().trim_start_matches('/').to_string(),
        }
    }

    /// Another file in the same directory.
    pub fn sibling(&self, file_name: &str) -> DatastorePath {
        let dir = self.path.rsplit_once('/').map(|(d, _)| d);
        DatastorePath {
            datastore: self.datastore.clone(),
            path: match dir {
                Some(d) => format!("{d}/{file_name}"),
                None => file_name.to_string(),
            },
        }
    }

    /// The last path segment.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl FromStr for DatastorePath {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let rest = s
            .strip_prefix('[')
            .ok_or_else(|| Error::invalid(format!("datastore path {s:?} does not start with [")))?;
        let (ds, path) = rest
            .split_once(']')
            .ok_or_else(|| Error::invalid(format!("datastore path {s:?} has no closing ]")))?;
        if ds.is_empty() {
            return Err(Error::invalid(format!(
                "datastore path {s:?} names no datastore"
            )));
        }
        Ok(DatastorePath::new(ds, path.trim()))
    }
}

impl fmt::Display for DatastorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.datastore, self.path)
    }
}

impl Client {
    /// The `dcPath` of the datacenter that holds `vm` (e.g. `DC0`, or `Folder/DC0` when the
    /// datacenter sits in a folder).
    pub async fn datacenter_of(&self, vm: &str) -> Result<String> {
        let o = self
            .properties(
                &MoRef::new("VirtualMachine", vm),
                &["parent", "parentVApp", "resourcePool"],
            )
            .await?
            .ok_or_else(|| Error::NotFound {
                object: format!("VirtualMachine {vm}"),
                message: "the VM does not exist".into(),
            })?;
        let starts: Vec<String> = ["parent", "parentVApp", "resourcePool"]
            .iter()
            .filter_map(|p| o.get(p).and_then(MoRef::from_node).map(|m| m.value))
            .collect();
        let i = &self.inner;
        let topo = i
            .session
            .with_session(&i.t, &i.sc, |tok| async move { self.topology(&tok).await })
            .await?;
        starts
            .iter()
            .find_map(|s| topo.datacenter_path(s))
            .ok_or_else(|| Error::NotFound {
                object: format!("VirtualMachine {vm}"),
                message: "no datacenter holds the VM".into(),
            })
    }

    /// The URL of a datastore file.
    pub fn datastore_url(&self, dc_path: &str, file: &DatastorePath) -> url::Url {
        let mut url = self.inner.t.base.clone();
        {
            let mut segs = url.path_segments_mut().expect("https base URL");
            segs.clear().push("folder");
            for s in file.path.split('/').filter(|s| !s.is_empty()) {
                segs.push(s);
            }
        }
        url.query_pairs_mut()
            .append_pair("dcPath", dc_path)
            .append_pair("dsName", &file.datastore);
        url
    }

    async fn datastore_request(
        &self,
        method: reqwest::Method,
        dc_path: &str,
        file: &DatastorePath,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let i = &self.inner;
        let url = self.datastore_url(dc_path, file);
        i.session
            .with_session(&i.t, &i.sc, |tok| {
                let (url, method, build) = (url.clone(), method.clone(), &build);
                async move {
                    let req = i.t.http().request(method, url).header(
                        "Cookie",
                        format!("vmware_soap_session={}", tok.cookie.expose()),
                    );
                    i.t.count_request();
                    let resp = build(req).send().await.map_err(|e| i.t.map_http_error(e))?;
                    check_status(resp, file)
                }
            })
            .await
    }

    /// The size of a datastore file (`HEAD`).
    pub async fn datastore_file_size(&self, dc_path: &str, file: &DatastorePath) -> Result<u64> {
        let resp = self
            .datastore_request(reqwest::Method::HEAD, dc_path, file, |r| r)
            .await?;
        resp.content_length()
            .ok_or_else(|| Error::malformed(format!("no length for datastore file {file}")))
    }

    /// Reads a whole (small) datastore file, at most `limit` bytes.
    pub async fn datastore_read_all(
        &self,
        dc_path: &str,
        file: &DatastorePath,
        limit: u64,
    ) -> Result<Vec<u8>> {
        let resp = self
            .datastore_request(reqwest::Method::GET, dc_path, file, |r| r)
            .await?;
        crate::transport::read_limited(resp, limit, &self.inner.t).await
    }

    /// Reads `range` of a datastore file with one ranged GET. Fails if fewer bytes came back.
    pub async fn datastore_read(
        &self,
        dc_path: &str,
        file: &DatastorePath,
        range: Range<u64>,
    ) -> Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let resp = self
            .datastore_request(reqwest::Method::GET, dc_path, file, |r| {
                r.header(reqwest::header::RANGE, header.clone())
            })
            .await?;
        let whole = resp.status() == StatusCode::OK;
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.inner.t.map_http_error(e))?;
        // A server that ignores Range sends the whole file: cut the part asked for.
        let body = if whole {
            let end = (range.end as usize).min(body.len());
            body.slice((range.start as usize).min(end)..end)
        } else {
            body
        };
        let want = range.end - range.start;
        if body.len() as u64 != want {
            return Err(Error::malformed(format!(
                "datastore file {file}: asked for {want} bytes at {}, got {}",
                range.start,
                body.len()
            )));
        }
        Ok(body)
    }

    /// Replaces a datastore file with `body` (`length` bytes), streamed with one PUT.
    pub async fn datastore_put(
        &self,
        dc_path: &str,
        file: &DatastorePath,
        body: reqwest::Body,
        length: u64,
    ) -> Result<()> {
        // A streamed body cannot be sent twice: log in first rather than retry.
        let i = &self.inner;
        let tok = i.session.token(&i.t, &i.sc).await?;
        let url = self.datastore_url(dc_path, file);
        i.t.count_request();
        let resp =
            i.t.http()
                .put(url)
                .header(
                    "Cookie",
                    format!("vmware_soap_session={}", tok.cookie.expose()),
                )
                .header(reqwest::header::CONTENT_LENGTH, length)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body)
                .send()
                .await
                .map_err(|e| i.t.map_http_error(e))?;
        check_status(resp, file).map(|_| ())
    }

    /// Replaces a (small) datastore file with `data`.
    pub async fn datastore_write(
        &self,
        dc_path: &str,
        file: &DatastorePath,
        data: Vec<u8>,
    ) -> Result<()> {
        let len = data.len() as u64;
        self.datastore_put(dc_path, file, reqwest::Body::from(data), len)
            .await
    }
}

fn check_status(resp: reqwest::Response, file: &DatastorePath) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    Err(match status {
        StatusCode::NOT_FOUND => Error::NotFound {
            object: format!("datastore file {file}"),
            message: "no such file".into(),
        },
        StatusCode::UNAUTHORIZED => Error::Authentication {
            message: format!("NotAuthenticated: datastore access to {file} refused"),
        },
        StatusCode::FORBIDDEN => Error::Privilege {
            message: format!("datastore access to {file} refused"),
            privilege: Some("Datastore.FileManagement".into()),
        },
        _ => Error::Fault {
            name: format!("HTTP {}", status.as_u16()),
            message: format!("datastore file {file}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_paths_parse_and_print() {
        let p: DatastorePath = "[LocalDS_0] DC0_H0_VM0/disk1.vmdk".parse().unwrap();
        assert_eq!(p.datastore, "LocalDS_0");
        assert_eq!(p.path, "DC0_H0_VM0/disk1.vmdk");
        assert_eq!(p.file_name(), "disk1.vmdk");
        assert_eq!(
            p.sibling("disk1-flat.vmdk").to_string(),
            "[LocalDS_0] DC0_H0_VM0/disk1-flat.vmdk"
        );
        let top: DatastorePath = "[ds 1] a.vmdk".parse().unwrap();
        assert_eq!(top.sibling("b.vmdk").path, "b.vmdk");
        assert!("ds] a".parse::<DatastorePath>().is_err());
        assert!("[] a".parse::<DatastorePath>().is_err());
    }
}
