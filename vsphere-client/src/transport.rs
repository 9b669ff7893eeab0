//! HTTPS transport: one reqwest client over rustls, SOAP posting (buffered or
//! streamed through the bounded XML reader), fault decoding, error mapping and
//! a request counter.

use std::error::Error as StdError;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use url::Url;

use crate::error::{Error, Result};
use crate::tls::{self, Observed, Trust, Verifier};
use crate::xml::{self, Limits, Node};

/// Cookie name vCenter uses for the SOAP session.
const SESSION_COOKIE: &str = "vmware_soap_session";

pub(crate) struct Transport {
    http: reqwest::Client,
    pub(crate) base: Url,
    sdk: Url,
    pub(crate) host: String,
    requests: AtomicU64,
    pub(crate) limits: Limits,
    verifier: Arc<Verifier>,
    observed: Arc<Mutex<Observed>>,
}

/// A SOAP answer: the `<XResponse>` element (or the `Body` if absent) and the
/// session cookie the server set, if any.
pub(crate) struct SoapReply {
    pub body: Node,
    pub session_cookie: Option<String>,
}

impl Transport {
    pub(crate) fn new(host: &str, trust: &Trust, limits: Limits) -> Result<Self> {
        let base = base_url(host)?;
        let (config, verifier, observed) = tls::client_config(trust)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("bgw-vsphere-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::invalid(format!("HTTP client setup: {e}")))?;
        let sdk = base.join("sdk").expect("static path");
        Ok(Transport {
            http,
            host: base.host_str().unwrap_or_default().to_string(),
            base,
            sdk,
            requests: AtomicU64::new(0),
            limits,
            verifier,
            observed,
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Number of HTTP requests sent so far (SOAP and REST).
    pub(crate) fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The thumbprint of the certificate the server presented last.
    pub(crate) fn seen_thumbprint(&self) -> Option<tls::Thumbprint> {
        self.observed.lock().ok().and_then(|o| o.seen)
    }

    /// Maps a reqwest error to a network or TLS error.
    pub(crate) fn map_http_error(&self, err: reqwest::Error) -> Error {
        let mut reason = err.to_string();
        let mut tls_failure = false;
        let mut source: Option<&(dyn StdError + 'static)> = err.source();
        while let Some(s) = source {
            reason = s.to_string();
            if s.downcast_ref::<rustls::Error>().is_some() {
                tls_failure = true;
            }
            if let Some(io) = s.downcast_ref::<io::Error>() {
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
                {
                    tls_failure = true;
                }
            }
            source = s.source();
        }
        let refused = self.observed.lock().ok().and_then(|o| o.refused.clone());
        if err.is_connect() && refused.is_some() {
            tls_failure = true;
        }
        if tls_failure {
            if let Some(r) = refused {
                reason = r;
            }
            let seen = self.seen_thumbprint().map(|t| t.to_string());
            return Error::Tls {
                host: self.host.clone(),
                expected: self.verifier.pinned().map(|t| t.to_string()),
                seen,
                reason,
            };
        }
        if err.is_timeout() {
            reason = format!("timed out ({reason})");
        }
        Error::Network {
            url: self.base.to_string(),
            reason,
            source: Some(err),
        }
    }

    async fn post_soap(&self, cookie: Option<&str>, body: String) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .post(self.sdk.clone())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "urn:vim25/7.0")
            .body(body);
        if let Some(c) = cookie {
            req = req.header("Cookie", format!("{SESSION_COOKIE}={c}"));
        }
        self.count_request();
        req.send().await.map_err(|e| self.map_http_error(e))
    }

    /// Sends a SOAP request and reads the whole (small) answer.
    pub(crate) async fn call(&self, cookie: Option<&str>, body: String) -> Result<SoapReply> {
        let resp = self.post_soap(cookie, body).await?;
        let session_cookie = session_cookie(&resp);
        let status = resp.status();
        let bytes = read_limited(resp, self.limits.max_tree_bytes as u64, self).await?;
        let root = xml::read_document(&bytes, self.limits).map_err(|e| {
            if status.is_success() {
                e
            } else {
                Error::Fault {
                    name: format!("HTTP {status}"),
                    message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into(),
                }
            }
        })?;
        Ok(SoapReply {
            body: body_of(root)?,
            session_cookie,
        })
    }

    /// Sends a SOAP request and reads the answer as a stream: each complete
    /// element named in `records` goes to `on_record` (on a blocking thread,
    /// while the body is still arriving).
    pub(crate) async fn call_streaming<F>(
        &self,
        cookie: Option<&str>,
        body: String,
        records: &'static [&'static str],
        on_record: F,
    ) -> Result<SoapReply>
    where
        F: FnMut(Node) -> Result<()> + Send + 'static,
    {
        let resp = self.post_soap(cookie, body).await?;
        let session_cookie = session_cookie(&resp);
        let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(16);
        let limits = self.limits;
        let parser = tokio::task::spawn_blocking(move || {
            let reader = io::BufReader::with_capacity(
                64 * 1024,
                ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
            );
            xml::read_stream(reader, records, limits, on_record)
        });
        let mut stream = resp.bytes_stream();
        let mut pump_error = None;
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(|e| e.to_string());
            let failed = item.is_err();
            if let Err(e) = &item {
                pump_error = Some(e.clone());
            }
            if tx.send(item).await.is_err() || failed {
                break; // the parser stopped (error or limit): stop reading
            }
        }
        drop(tx);
        let parsed = parser
            .await
            .map_err(|e| Error::malformed(format!("parser task failed: {e}")))?;
        let root = match (parsed, pump_error) {
            (Ok(root), _) => root,
            (Err(_), Some(net)) => {
                return Err(Error::Network {
                    url: self.base.to_string(),
                    reason: format!("connection lost while reading a response: {net}"),
                    source: None,
                })
            }
            (Err(e), None) => return Err(e),
        };
        Ok(SoapReply {
            body: body_of(root)?,
            session_cookie,
        })
    }
}

/// Reads a body up to `limit` bytes.
pub(crate) async fn read_limited(
    resp: reqwest::Response,
    limit: u64,
    t: &Transport,
) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(Error::malformed(format!(
            "response larger than {limit} bytes"
        )));
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| t.map_http_error(e))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(Error::malformed(format!(
                "response larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?.trim();
            let (name, value) = pair.split_once('=')?;
            (name.trim() == SESSION_COOKIE).then(|| value.trim().to_string())
        })
}

pub(crate) fn body_of_for_fuzzing(root: Node) -> Result<Node> {
    body_of(root)
}

/// Finds the SOAP body's single answer element, turning a fault into an error.
fn body_of(root: Node) -> Result<Node> {
    if root.name != "Envelope" {
        return Err(Error::malformed(format!(
            "expected a SOAP Envelope, got <{}>",
            root.name
        )));
    }
    let body = root
        .children
        .into_iter()
        .find(|c| c.name == "Body")
        .ok_or_else(|| Error::malformed("SOAP Envelope without Body"))?;
    if let Some(fault) = body.child("Fault") {
        return Err(fault_error(fault));
    }
    Ok(body.children.into_iter().next().unwrap_or_default())
}

/// Decodes `<Fault><faultstring/><detail><XFault xsi:type="X"/></detail></Fault>`.
pub(crate) fn fault_error(fault: &Node) -> Error {
    let message = fault
        .child_text("faultstring")
        .unwrap_or("")
        .trim()
        .to_string();
    let detail = fault.child("detail").and_then(|d| d.children.first());
    let name = detail
        .map(|d| {
            d.xsi_type
                .clone()
                .unwrap_or_else(|| d.name.trim_end_matches("Fault").to_string())
        })
        .unwrap_or_else(|| {
            fault
                .child_text("faultcode")
                .unwrap_or("ServerFault")
                .to_string()
        });
    let privilege = detail
        .and_then(|d| d.child_text("privilegeId"))
        .map(str::to_string);
    let mut err = Error::from_fault(&name, &message, privilege);
    if let (Error::NotFound { object, .. }, Some(d)) = (&mut err, detail) {
        if let Some(obj) = d.child("obj") {
            *object = format!(
                "{} {}",
                obj.type_attr.as_deref().unwrap_or("object"),
                obj.text.trim()
            );
        }
    }
    err
}

/// `https://host[:port]/` from `vc.example.com`, `vc:8443`, `10.0.0.5`,
/// `[fe80::1]:443` or a bare IPv6 address.
pub(crate) fn base_url(host: &str) -> Result<Url> {
    let host = host.trim();
    let host = host
        .strip_prefix("https://")
        .unwrap_or(host)
        .trim_end_matches('/')
        .trim_end_matches("/sdk");
    if host.is_empty() {
        return Err(Error::invalid("empty vCenter host"));
    }
    let authority = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let url = Url::parse(&format!("https://{authority}/"))
        .map_err(|e| Error::invalid(format!("vCenter host {host:?}: {e}")))?;
    if url.host_str().is_none() || url.path() != "/" || url.query().is_some() {
        return Err(Error::invalid(format!(
            "vCenter host {host:?} is not a host name or address"
        )));
    }
    Ok(url)
}

struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(
            base_url("vc.example.com").unwrap().as_str(),
            "https://vc.example.com/"
        );
        assert_eq!(base_url("vc:8443").unwrap().as_str(), "https://vc:8443/");
        assert_eq!(
            base_url("10.0.0.5:443").unwrap().as_str(),
            "https://10.0.0.5/"
        );
        assert_eq!(base_url("fe80::1").unwrap().as_str(), "https://[fe80::1]/");
        assert_eq!(
            base_url("[fe80::1]:8443").unwrap().as_str(),
            "https://[fe80::1]:8443/"
        );
        assert!(base_url("").is_err());
        assert!(base_url("vc/x").is_err());
    }

    #[test]
    fn faults_are_typed() {
        let doc = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Permission to perform this operation was denied.</faultstring><detail><NoPermissionFault xmlns="urn:vim25" xsi:type="NoPermission"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NoPermissionFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let root = xml::read_document(doc, Limits::default()).unwrap();
        let err = body_of(root).err().unwrap();
        assert!(
            matches!(err, Error::Privilege { ref privilege, .. } if privilege.as_deref() == Some("System.View")),
            "{err:?}"
        );
    }
}
