//! A byte-level TCP proxy on loopback that delays a server's answers, per connection.
//!
//! Put it between a client and a real peer (the agent and vcsim) to open timing windows
//! that a fast local peer never shows: a slow vCenter, a logout that takes seconds. It
//! forwards bytes untouched, so TLS passes through and certificate thumbprints still match.
//!
//! The delay is latency, not a bandwidth limit: each chunk the server sends is forwarded to
//! the client that long after it arrived, and so is the server's end of the connection.
//! Every connection has its own delay, taken from [`LatencyProxy::set_delay`] when it is
//! accepted and changeable later through [`LatencyProxy::open_connections`].
//!
//! ```no_run
//! # async fn demo(upstream: std::net::SocketAddr) -> bgw_tests::Result<()> {
//! use std::time::Duration;
//! use bgw_tests::latency_proxy::LatencyProxy;
//! let proxy = LatencyProxy::start(upstream).await?;
//! // ... point the client at proxy.host_port() and connect ...
//! let old = proxy.open_connections();
//! old.set_delay(Duration::from_millis(500)); // those connections answer slowly from now on
//! // ... later connections are not delayed; wait until the old ones are gone:
//! while !old.all_closed() {
//!     tokio::time::sleep(Duration::from_millis(50)).await;
//! }
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{HarnessError, Result};

/// The proxy: listens on `127.0.0.1:0`, forwards every connection to the upstream address.
/// Stops (and drops every connection) when dropped.
pub struct LatencyProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// Delay of connections accepted from now on, in microseconds.
    new_delay_us: AtomicU64,
    /// While set, the peer is unreachable: new connections are closed at once.
    down: AtomicBool,
    conns: Mutex<Vec<Arc<Conn>>>,
}

#[derive(Default)]
struct Conn {
    delay_us: AtomicU64,
    /// Bytes the client has sent so far.
    from_client: AtomicU64,
    closed: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Conn {
    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl LatencyProxy {
    /// Binds `127.0.0.1:0` and starts forwarding to `upstream`, with no delay.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("binding the latency proxy", "127.0.0.1:0", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the latency proxy's address", "", e))?;
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, shared.clone()));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, the form a hypervisor's host takes.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The delay of the server's answers on connections accepted from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .new_delay_us
            .store(micros(delay), Ordering::Relaxed);
    }

    /// The connections open now (their later changes of delay and their end are seen
    /// through the handle).
    pub fn open_connections(&self) -> Connections {
        let conns = self.shared.conns.lock().expect("proxy lock");
        Connections(
            conns
                .iter()
                .filter(|c| !c.closed.load(Ordering::Relaxed))
                .cloned()
                .collect(),
        )
    }

    /// Bytes clients have sent on every connection since the start.
    pub fn client_bytes(&self) -> u64 {
        let conns = self.shared.conns.lock().expect("proxy lock");
        conns
            .iter()
            .map(|c| c.from_client.load(Ordering::Relaxed))
            .sum()
    }

    /// How many connections were accepted since the start.
    pub fn accepted(&self) -> usize {
        self.shared.conns.lock().expect("proxy lock").len()
    }

    /// Takes the peer off the network: every open connection is dropped, and connections
    /// made from now on are closed as soon as they are accepted, until [`Self::restore`].
    pub fn cut(&self) {
        self.shared.down.store(true, Ordering::Relaxed);
        self.open_connections().close();
    }

    /// Brings the peer back after [`Self::cut`]: new connections are forwarded again.
    pub fn restore(&self) {
        self.shared.down.store(false, Ordering::Relaxed);
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for conn in self.shared.conns.lock().expect("proxy lock").iter() {
            if let Some(task) = conn.task.lock().expect("proxy lock").take() {
                task.abort();
            }
        }
    }
}

/// A set of proxied connections, taken with [`LatencyProxy::open_connections`].
pub struct Connections(Vec<Arc<Conn>>);

impl Connections {
    /// How many connections the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Delays the server's answers on these connections by `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        for c in &self.0 {
            c.delay_us.store(micros(delay), Ordering::Relaxed);
        }
    }

    /// Whether every connection of the set has ended (both directions).
    pub fn all_closed(&self) -> bool {
        self.0.iter().all(|c| c.closed.load(Ordering::Relaxed))
    }

    /// Bytes the clients of these connections have sent so far: it grows when a request is
    /// sent, also while its answer is being held back.
    pub fn client_bytes(&self) -> u64 {
        self.0
            .iter()
            .map(|c| c.from_client.load(Ordering::Relaxed))
            .sum()
    }

    /// Drops these connections at once, both sides, with whatever answers were held back:
    /// the client sees its server go away mid-answer.
    pub fn close(&self) {
        for c in &self.0 {
            if let Some(task) = c.task.lock().expect("proxy lock").take() {
                task.abort();
            }
            c.closed.store(true, Ordering::Relaxed);
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if shared.down.load(Ordering::Relaxed) {
            drop(client);
            continue;
        }
        let conn = Arc::new(Conn {
            delay_us: AtomicU64::new(shared.new_delay_us.load(Ordering::Relaxed)),
            ..Conn::default()
        });
        let task = tokio::spawn(forward(client, upstream, conn.clone()));
        *conn.task.lock().expect("proxy lock") = Some(task);
        shared.conns.lock().expect("proxy lock").push(conn);
    }
}

/// Marks the connection closed however its forwarding ends.
struct ClosedOnDrop(Arc<Conn>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Relaxed);
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, conn: Arc<Conn>) {
    let _closed = ClosedOnDrop(conn.clone());
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let counted = conn.clone();
    let requests = async move {
        let mut server_write = server_write;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            counted.from_client.fetch_add(n as u64, Ordering::Relaxed);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let answers = async move {
        let _ = delayed_copy(server_read, &mut client_write, &conn).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(requests, answers);
}

/// Copies `from` to `to`, each chunk (and the end of `from`) that connection's delay after
/// it was read.
async fn delayed_copy(
    mut from: impl AsyncRead + Unpin + Send + 'static,
    to: &mut (impl AsyncWrite + Unpin),
    conn: &Conn,
) -> std::io::Result<()> {
    // (when to forward, bytes; empty for the end)
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            if tx
                .send((Instant::now() + conn.delay(), buf[..n].to_vec()))
                .is_err()
                || n == 0
            {
                return;
            }
        }
    };
    let writer = async {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if bytes.is_empty() {
                return Ok(());
            }
            to.write_all(&bytes).await?;
        }
        Ok(())
    };
    // The writer failing (client gone) ends both; the reader ends at the server's end.
    tokio::select! {
        r = writer => r,
        () = async { reader.await; std::future::pending::<()>().await } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers every chunk with itself and closes when the client does.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Duration {
        let started = std::time::Instant::now();
        stream.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg, "bytes pass through untouched");
        started.elapsed()
    }

    #[tokio::test]
    async fn delays_answers_per_connection_and_reports_the_end() {
        let proxy = LatencyProxy::start(echo_server().await).await.unwrap();
        let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut old, b"fast").await < Duration::from_millis(150));

        let slowed = proxy.open_connections();
        assert_eq!(slowed.len(), 1);
        slowed.set_delay(Duration::from_millis(300));
        assert!(round_trip(&mut old, b"slow now").await >= Duration::from_millis(300));

        // A connection opened afterwards keeps the proxy's delay (none).
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut new, b"still fast").await < Duration::from_millis(150));
        assert_eq!(proxy.accepted(), 2);

        // The server's end reaches the client late too; then the connection counts as closed.
        assert!(!slowed.all_closed());
        let started = std::time::Instant::now();
        old.shutdown().await.unwrap();
        let mut rest = Vec::new();
        old.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(300));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !slowed.all_closed() {
            assert!(
                std::time::Instant::now() < deadline,
                "connection not closed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(proxy.open_connections().len(), 1);
    }

    #[tokio::test]
    async fn held_answers_are_dropped_with_the_connection() {
        let proxy = LatencyProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut s, b"up").await;
        let held = proxy.open_connections();
        held.set_delay(Duration::from_secs(3600));
        let before = held.client_bytes();
        s.write_all(b"never answered").await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while held.client_bytes() < before + 14 {
            assert!(std::time::Instant::now() < deadline, "request not seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        held.close();
        assert!(held.all_closed());
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "the held answer was dropped");
    }

    #[tokio::test]
    async fn a_cut_drops_open_connections_and_refuses_new_ones_until_restored() {
        let proxy = LatencyProxy::start(echo_server().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut open, b"before").await;

        proxy.cut();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest))
            .await
            .expect("the open connection ends at the cut");
        assert!(n.map_or(true, |n| n == 0), "nothing arrives after the cut");
        let mut during = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), during.read(&mut buf))
            .await
            .expect("a connection made during the cut is closed at once");
        assert!(n.map_or(true, |n| n == 0));

        proxy.restore();
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut after, b"after").await;
    }

    #[tokio::test]
    async fn new_connections_take_the_delay_set_before() {
        let proxy = LatencyProxy::start(echo_server().await).await.unwrap();
        proxy.set_delay(Duration::from_millis(200));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let took = round_trip(&mut s, &vec![7u8; 200_000]).await;
        // Latency, not a limit per chunk: a large answer is delayed about once.
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
}
