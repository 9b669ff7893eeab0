//! Chunks as objects in an S3-compatible store: `PREFIX/ab/abcd…`.
//!
//! HTTP goes through the workspace's `reqwest` (rustls with the ring provider, the system's
//! root certificates), so the chunk store brings no second TLS stack.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use object_store::client::{
    ClientConfigKey, ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind,
    HttpRequest, HttpResponse, HttpResponseBody, HttpService,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{ChunkHash, ChunkInfo, ChunkStore, Error};

pub struct ObjectChunkStore {
    store: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
    location: String,
}

impl ObjectChunkStore {
    /// An S3-compatible bucket configured from the `AWS_*` environment variables.
    pub fn s3_from_env(bucket: &str, prefix: &str) -> Result<Self, Error> {
        let builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        Self::from_builder(builder, prefix, &format!("s3://{bucket}/{prefix}"))
    }

    /// An S3-compatible bucket configured by `builder` (its HTTP client is set here).
    pub fn from_builder(
        builder: object_store::aws::AmazonS3Builder,
        prefix: &str,
        location: &str,
    ) -> Result<Self, Error> {
        let store = builder
            .with_http_connector(RustlsConnector)
            .build()
            .map_err(|source| Error::Object {
                location: location.to_owned(),
                source,
            })?;
        Ok(Self::new(Arc::new(store), prefix, location.to_owned()))
    }

    /// Chunks in any `object_store` backend, under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, location: String) -> Self {
        let prefix = prefix.trim_matches('/');
        Self {
            store,
            prefix: (!prefix.is_empty()).then(|| Path::from(prefix)),
            location,
        }
    }

    fn path_of(&self, hash: &ChunkHash) -> Path {
        let h = hash.as_str();
        let tail = format!("{}/{h}", &h[0..2]);
        match &self.prefix {
            Some(p) => Path::from(format!("{p}/{tail}")),
            None => Path::from(tail),
        }
    }

    fn err(&self, source: object_store::Error) -> Error {
        Error::Object {
            location: self.location.clone(),
            source,
        }
    }
}

impl ChunkStore for ObjectChunkStore {
    fn put(&self, hash: &ChunkHash, data: Bytes) -> BoxFuture<'_, Result<bool, Error>> {
        let path = self.path_of(hash);
        async move {
            // Content-addressed: an object already there holds the same bytes.
            match self.store.head(&path).await {
                Ok(_) => return Ok(false),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
            self.store
                .put(&path, PutPayload::from_bytes(data))
                .await
                .map_err(|e| self.err(e))?;
            Ok(true)
        }
        .boxed()
    }

    fn get(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        let path = self.path_of(hash);
        async move {
            match self.store.get(&path).await {
                Ok(found) => Ok(Some(found.bytes().await.map_err(|e| self.err(e))?)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.err(e)),
            }
        }
        .boxed()
    }

    fn has(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<bool, Error>> {
        let path = self.path_of(hash);
        async move {
            match self.store.head(&path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.err(e)),
            }
        }
        .boxed()
    }

    fn list(&self) -> BoxStream<'_, Result<ChunkInfo, Error>> {
        self.store
            .list(self.prefix.as_ref())
            .filter_map(move |item| async move {
                match item {
                    Ok(meta) => {
                        let hash = meta.location.filename()?.parse::<ChunkHash>().ok()?;
                        Some(Ok(ChunkInfo {
                            hash,
                            size: meta.size,
                            modified: meta.last_modified,
                        }))
                    }
                    Err(e) => Some(Err(self.err(e))),
                }
            })
            .boxed()
    }

    fn delete(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<(), Error>> {
        let path = self.path_of(hash);
        async move {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.err(e)),
            }
        }
        .boxed()
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// Builds `object_store`'s HTTP clients on the workspace's reqwest and rustls.
#[derive(Debug, Clone, Copy)]
struct RustlsConnector;

impl HttpConnector for RustlsConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(!allow_http)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300));
        for cert in rustls_native_certs::load_native_certs().certs {
            if let Ok(cert) = reqwest::Certificate::from_der(&cert) {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        })?;
        Ok(HttpClient::new(Reqwest(client)))
    }
}

#[derive(Debug)]
struct Reqwest(reqwest::Client);

fn http_error(e: reqwest::Error) -> HttpError {
    let kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        HttpErrorKind::Decode
    } else if e.is_request() {
        HttpErrorKind::Request
    } else {
        HttpErrorKind::Unknown
    };
    HttpError::new(kind, e)
}

#[async_trait::async_trait]
impl HttpService for Reqwest {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        use http_body_util::BodyExt;
        let (parts, body) = req.into_parts();
        let body = match body.as_bytes() {
            Some(b) => b.clone(),
            None => body.collect().await?.to_bytes(),
        };
        let url: reqwest::Url = parts
            .uri
            .to_string()
            .parse()
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
        let mut request = reqwest::Request::new(parts.method, url);
        *request.headers_mut() = parts.headers;
        *request.body_mut() = Some(body.into());
        let response = self.0.execute(request).await.map_err(http_error)?;
        let response: http::Response<reqwest::Body> = response.into();
        let (parts, body) = response.into_parts();
        let body = HttpResponseBody::new(body.map_err(http_error));
        Ok(HttpResponse::from_parts(parts, body))
    }
}
