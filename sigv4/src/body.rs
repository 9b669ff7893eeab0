//! A request body that is hashed as it streams through.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Wraps a streamed body; once the inner body ends, the SHA-256 of everything read is compared
/// with the declared one and a mismatch is returned as the last frame's error
/// ([`Error::PayloadHashMismatch`]), so the handler fails the request instead of keeping it.
/// Made by [`crate::PayloadCheck::wrap`].
pub struct HashingBody<B> {
    inner: B,
    hasher: Sha256,
    expected: Option<[u8; 32]>,
    done: bool,
}

impl<B> HashingBody<B> {
    pub(crate) fn new(inner: B, expected: Option<[u8; 32]>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            expected,
            done: false,
        }
    }
}

impl<B> Body for HashingBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if this.expected.is_some() {
                        this.hasher.update(data);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(Error::BodyRead(e.into()))))
            }
            None => {
                this.done = true;
                let Some(expected) = this.expected else {
                    return Poll::Ready(None);
                };
                let received: [u8; 32] = std::mem::take(&mut this.hasher).finalize().into();
                if received == expected {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(Error::PayloadHashMismatch {
                        declared: hex::encode(expected),
                        received: hex::encode(received),
                    })))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // The end is reported by `poll_frame` only after the hash was checked.
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
