//! Throttled wrappers around `AsyncRead`, `AsyncWrite` and streams of `Bytes`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::Stream;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Throttle;

type Payment = Pin<Box<dyn Future<Output = u64> + Send>>;

/// One stream's account with the shared throttle: bytes already paid for but not yet sent
/// (whole cells are paid, and a writer may accept less than was paid for).
struct Meter {
    throttle: Throttle,
    credit: u64,
    payment: Option<Payment>,
}

impl Meter {
    fn new(throttle: Throttle) -> Self {
        Self {
            throttle,
            credit: 0,
            payment: None,
        }
    }

    /// How many of `available` bytes to release next.
    fn piece(&self, available: usize) -> usize {
        if self.throttle.is_unlimited() {
            return available;
        }
        let piece = self.throttle.piece_bytes().max(self.credit);
        available.min(usize::try_from(piece).unwrap_or(usize::MAX))
    }

    /// Ready once `bytes` may go out.
    fn poll_ready(&mut self, cx: &mut Context<'_>, bytes: usize) -> Poll<()> {
        let bytes = bytes as u64;
        loop {
            if let Some(payment) = self.payment.as_mut() {
                let paid = ready!(payment.as_mut().poll(cx));
                self.payment = None;
                self.credit += paid;
            }
            if self.credit >= bytes || self.throttle.is_unlimited() {
                return Poll::Ready(());
            }
            let throttle = self.throttle.clone();
            let owed = bytes - self.credit;
            self.payment = Some(Box::pin(async move { throttle.acquire(owed).await }));
        }
    }

    /// Records that `bytes` went out.
    fn spend(&mut self, bytes: usize) {
        self.credit = self.credit.saturating_sub(bytes as u64);
    }
}

pin_project! {
    /// A writer whose writes are throttled; see [`Throttle::writer`].
    pub struct ThrottledWrite<W> {
        #[pin]
        inner: W,
        meter: Meter,
    }
}

impl<W> ThrottledWrite<W> {
    pub(super) fn new(inner: W, throttle: Throttle) -> Self {
        Self {
            inner,
            meter: Meter::new(throttle),
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: AsyncWrite> AsyncWrite for ThrottledWrite<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        if buf.is_empty() {
            return this.inner.poll_write(cx, buf);
        }
        let piece = this.meter.piece(buf.len());
        ready!(this.meter.poll_ready(cx, piece));
        let written = ready!(this.inner.poll_write(cx, &buf[..piece]))?;
        this.meter.spend(written);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

pin_project! {
    /// A reader whose reads are throttled; see [`Throttle::reader`].
    pub struct ThrottledRead<R> {
        #[pin]
        inner: R,
        meter: Meter,
    }
}

impl<R> ThrottledRead<R> {
    pub(super) fn new(inner: R, throttle: Throttle) -> Self {
        Self {
            inner,
            meter: Meter::new(throttle),
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncRead> AsyncRead for ThrottledRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if buf.remaining() == 0 {
            return this.inner.poll_read(cx, buf);
        }
        let piece = this.meter.piece(buf.remaining());
        ready!(this.meter.poll_ready(cx, piece));
        // Read at most `piece` bytes: into a window of the caller's buffer.
        let window = buf.initialize_unfilled_to(piece);
        let mut limited = ReadBuf::new(window);
        ready!(this.inner.poll_read(cx, &mut limited))?;
        let read = limited.filled().len();
        buf.advance(read);
        this.meter.spend(read);
        Poll::Ready(Ok(()))
    }
}

pin_project! {
    /// A stream of byte chunks released through the throttle; see [`Throttle::stream`].
    pub struct ThrottledStream<S> {
        #[pin]
        inner: S,
        meter: Meter,
        pending: Bytes,
    }
}

impl<S> ThrottledStream<S> {
    pub(super) fn new(inner: S, throttle: Throttle) -> Self {
        Self {
            inner,
            meter: Meter::new(throttle),
            pending: Bytes::new(),
        }
    }
}

impl<S, E> Stream for ThrottledStream<S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        while this.pending.is_empty() {
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => *this.pending = chunk,
                other => return Poll::Ready(other),
            }
        }
        let piece = this.meter.piece(this.pending.len());
        ready!(this.meter.poll_ready(cx, piece));
        this.meter.spend(piece);
        Poll::Ready(Some(Ok(this.pending.split_to(piece))))
    }
}
