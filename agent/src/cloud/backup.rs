//! The backup part of the gateway protocol: which chunks the cloud lacks, chunk upload (a
//! zstd frame, streamed through the upload throttle, signed with the body's SHA-256) and
//! download, job progress and completion.

use std::time::Duration;

use bgw_protocol::backup::{
    chunk_path, paths, ChunkHash, ChunkStored, JobComplete, JobProgress, MissingChunks,
    MissingChunksRequest, JOB_ID_QUERY, RAW_LENGTH_HEADER,
};
use bgw_protocol::ErrorCode;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{refused, CloudClient, REQUEST_TIMEOUT};
use crate::error::{Error, Result};

/// A chunk download may take this long (a restore is not throttled, but the link may be slow).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

impl CloudClient {
    /// Which of `hashes` the cloud lacks, in request order.
    pub async fn missing_chunks(&self, request: &MissingChunksRequest) -> Result<MissingChunks> {
        self.post(
            paths::CHUNKS_MISSING,
            request,
            true,
            Duration::from_secs(60),
        )
        .await
    }

    pub async fn job_progress(&self, progress: &JobProgress) -> Result<()> {
        let _: serde_json::Value = self
            .post(paths::JOBS_PROGRESS, progress, true, REQUEST_TIMEOUT)
            .await?;
        Ok(())
    }

    pub async fn job_complete(&self, complete: &JobComplete) -> Result<()> {
        let _: serde_json::Value = self
            .post(paths::JOBS_COMPLETE, complete, true, REQUEST_TIMEOUT)
            .await?;
        Ok(())
    }

    /// Uploads one chunk: `frame` is the zstd frame of `raw_len` raw bytes named `hash`. The
    /// body goes out through `throttle`, so the bandwidth schedule governs it; there is no
    /// overall timeout (at the lowest limit a chunk takes minutes), the caller cancels.
    pub async fn put_chunk(
        &self,
        job_id: &str,
        hash: &ChunkHash,
        raw_len: u64,
        frame: Bytes,
        throttle: &bgw_scheduler::throttle::Throttle,
    ) -> Result<ChunkStored> {
        // Over TLS the body's hash is left out of the signature: the chunk's name, its content's
        // SHA-256, is in the signed path, and the cloud refuses a body that does not decompress
        // to that content. Hashing the compressed body as well would only cost CPU on both ends.
        let over_tls = self.endpoint.scheme() == "https";
        let body_sha = if over_tls {
            None
        } else {
            let frame = frame.clone();
            Some(
                tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&frame)))
                    .await
                    .expect("hashing does not panic"),
            )
        };
        let mut url = self.endpoint.clone();
        url.set_path(&chunk_path(hash));
        url.query_pairs_mut()
            .clear()
            .append_pair(JOB_ID_QUERY, job_id);
        let url = url.to_string();
        let raw = raw_len.to_string();
        let length = frame.len().to_string();
        let headers = [
            ("host", self.host_header.as_str()),
            ("content-type", "application/zstd"),
            ("content-length", length.as_str()),
            (RAW_LENGTH_HEADER, raw.as_str()),
        ];
        let payload = match &body_sha {
            Some(sha) => bgw_sigv4::Payload::Sha256(sha),
            None => bgw_sigv4::Payload::Unsigned,
        };
        let signed = self.sign("PUT", &url, &headers, payload)?;
        let mut request = self.http.put(&url);
        for (name, value) in headers.iter().filter(|(n, _)| *n != "content-length") {
            request = request.header(*name, *value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let n = frame.len();
        let body = throttle.body(futures::stream::once(async move {
            Ok::<_, std::io::Error>(frame)
        }));
        let response = request
            .header("content-length", n)
            .body(body)
            .send()
            .await
            .map_err(|source| Error::CloudUnreachable {
                url: url.clone(),
                source,
            })?;
        self.answer(paths::CHUNKS_PREFIX, &url, response).await
    }

    /// Downloads one chunk's zstd frame and its raw length.
    pub async fn get_chunk(&self, hash: &ChunkHash) -> Result<(Bytes, Option<u64>)> {
        let url = self.url(&chunk_path(hash));
        let headers = [("host", self.host_header.as_str())];
        let empty = hex::encode(Sha256::digest(b""));
        let signed = self.sign("GET", &url, &headers, bgw_sigv4::Payload::Sha256(&empty))?;
        let mut request = self.http.get(&url).timeout(DOWNLOAD_TIMEOUT);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|source| Error::CloudUnreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let raw_len = response
            .headers()
            .get(RAW_LENGTH_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = response
            .bytes()
            .await
            .map_err(|source| Error::CloudUnreachable {
                url: url.clone(),
                source,
            })?;
        if status.is_success() {
            return Ok((bytes, raw_len));
        }
        Err(refused(paths::CHUNKS_PREFIX, status.as_u16(), &bytes))
    }

    fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: bgw_sigv4::Payload<'_>,
    ) -> Result<bgw_protocol::sigv4::SignedHeaders> {
        let creds = self
            .credentials
            .read()
            .expect("credentials lock")
            .clone()
            .ok_or(Error::NotActivated)?;
        Ok(bgw_sigv4::sign_request(
            &bgw_sigv4::OutgoingRequest {
                method,
                uri: url,
                headers,
                payload,
            },
            &bgw_sigv4::Scope {
                service: bgw_protocol::sigv4::SERVICE,
                region: &self.region,
            },
            &bgw_sigv4::Key {
                access_key_id: &creds.access_key_id,
                secret_access_key: creds.secret_access_key.expose(),
            },
            self.time.now(),
        )
        .map_err(bgw_protocol::Error::from)?)
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        url: &str,
        response: reqwest::Response,
    ) -> Result<T> {
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| Error::CloudUnreachable {
                url: url.to_string(),
                source,
            })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|source| Error::CloudAnswer { path, source });
        }
        Err(refused(path, status.as_u16(), &bytes))
    }
}

/// Whether the cloud refused a request because the job has ended there.
pub fn is_job_not_running(e: &Error) -> bool {
    matches!(e, Error::CloudRefused { code, .. } if code == &format!("{:?}", ErrorCode::JobNotRunning))
}
