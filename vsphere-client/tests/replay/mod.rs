//! A tiny HTTPS server that answers with recorded vCenter responses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub soap_method: String,
    /// `vmware_soap_session` cookie value.
    pub cookie: Option<String>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// How many calls of this SOAP method arrived so far, this one included.
    pub fn seq_of(&self, method: &str) -> usize {
        self.counts
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(0)
    }
}

pub struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    cookie: Option<String>,
    delay: Option<Duration>,
}

impl Reply {
    pub fn xml(body: String) -> Self {
        Reply {
            status: 200,
            content_type: "text/xml; charset=utf-8",
            body,
            cookie: None,
            delay: None,
        }
    }
    pub fn json(body: String) -> Self {
        Reply {
            status: 200,
            content_type: "application/json",
            body,
            cookie: None,
            delay: None,
        }
    }
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    /// Sets a session cookie; a counter is appended so each login gets a new one.
    pub fn with_cookie(mut self, prefix: &str) -> Self {
        self.cookie = Some(prefix.to_string());
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
}

type Handler = dyn Fn(&Request) -> Option<Reply> + Send + Sync;

pub struct Server {
    pub thumbprint: String,
    port: u16,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    pub rest_requests: Arc<AtomicUsize>,
}

impl Server {
    pub async fn start(
        handler: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
    ) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let der = cert.cert.der().to_vec();
        let thumbprint = vsphere_client::Thumbprint::of_der(&der).to_string();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![der.into()], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let rest_requests = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let logins = Arc::new(AtomicUsize::new(0));
        {
            let counts = counts.clone();
            let rest_requests = rest_requests.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let handler = handler.clone();
                    let counts = counts.clone();
                    let rest_requests = rest_requests.clone();
                    let logins = logins.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut conn = BufReader::new(tls);
                        while let Some(req) = read_request(&mut conn, &counts).await {
                            if req.path.starts_with("/api") || req.path.starts_with("/rest") {
                                rest_requests.fetch_add(1, Ordering::SeqCst);
                            }
                            let reply = handler(&req).unwrap_or_else(|| {
                                panic!(
                                    "no fixture for {} {} {}",
                                    req.method, req.path, req.soap_method
                                )
                            });
                            if let Some(d) = reply.delay {
                                tokio::time::sleep(d).await;
                            }
                            let mut head = format!(
                                "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                                reply.status,
                                reply.content_type,
                                reply.body.len()
                            );
                            if let Some(prefix) = &reply.cookie {
                                let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                                head.push_str(&format!(
                                    "Set-Cookie: vmware_soap_session=\"{prefix}-{n}\"; Path=/; HttpOnly; Secure;\r\n"
                                ));
                            }
                            head.push_str("\r\n");
                            let stream = conn.get_mut();
                            if stream.write_all(head.as_bytes()).await.is_err()
                                || stream.write_all(reply.body.as_bytes()).await.is_err()
                                || stream.flush().await.is_err()
                            {
                                return;
                            }
                        }
                    });
                }
            });
        }
        Server {
            thumbprint,
            port,
            counts,
            rest_requests,
        }
    }

    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Number of calls of a SOAP method (or requests to a REST path).
    pub fn count(&self, method: &str) -> usize {
        self.counts
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    pub fn count_path(&self, path: &str) -> usize {
        self.count(path)
    }
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    conn: &mut BufReader<S>,
    counts: &Arc<Mutex<HashMap<String, usize>>>,
) -> Option<Request> {
    let mut line = String::new();
    if conn.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target, None),
    };
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await.ok()?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let soap_method = body
        .split("<soapenv:Body><")
        .nth(1)
        .and_then(|rest| rest.split([' ', '>']).next())
        .unwrap_or("")
        .to_string();
    let cookie = headers.get("cookie").and_then(|c| {
        c.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == "vmware_soap_session").then(|| v.trim_matches('"').to_string())
        })
    });
    {
        let mut c = counts.lock().unwrap();
        let key = if soap_method.is_empty() {
            path.clone()
        } else {
            soap_method.clone()
        };
        *c.entry(key).or_insert(0) += 1;
    }
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
        soap_method,
        cookie,
        counts: counts.clone(),
    })
}
