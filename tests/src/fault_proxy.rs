//! A fault-injecting TCP proxy for the tests: the kernel here has no
//! `netem`, so the faults of a bad network between agent and collector are
//! made in user space, on loopback. It adds latency (a pipe: chunks are
//! delivered in order, each `latency` after it was read, without
//! serialising the waits), limits each direction's rate, stalls
//! connections, resets them (RST both ways) at random byte offsets, turns
//! them half-open (nothing passes and neither end is told, as when a NAT
//! forgets a flow) and partitions the network (nothing passes on any
//! connection, and the proxy reads none, so senders block at their own
//! socket buffers; a new one is accepted but reaches the upstream only when
//! the partition ends, as SYNs retried across it would). The faults can change
//! while connections are open; every connection is counted until both of
//! its ends have closed, so a test sees the connections an end leaks.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the proxy does to the bytes it carries; read live.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// One-way delay added to every chunk, each direction.
    pub latency: Duration,
    /// Each direction's rate in bytes per second; `None`: unlimited.
    pub bytes_per_sec: Option<u64>,
    /// A new connection is reset at a random offset below this many bytes
    /// (both directions counted); `None`: never.
    pub reset_below: Option<u64>,
    /// Chance per chunk forwarded that its connection stalls both ways for
    /// `stall_for` (the sockets stay open).
    pub stall_chance: f64,
    pub stall_for: Duration,
    /// Chance that a new connection goes half-open at a random offset below
    /// `half_open_below` bytes.
    pub half_open_chance: f64,
    pub half_open_below: u64,
}

/// What the proxy has done; read any time.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub accepted: AtomicU64,
    /// Connections whose upstream refused (the collector was down): the
    /// client's socket is reset, as a refused connection would be.
    pub upstream_refused: AtomicU64,
    /// Connections that reached the upstream: a client's reconnection is
    /// seen here before anything it sends is answered.
    pub upstream_reached: AtomicU64,
    pub resets: AtomicU64,
    pub stalls: AtomicU64,
    pub half_opens: AtomicU64,
    /// Connections with at least one end still open.
    pub open: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// Bytes read from either end: what the network took in. Across a
    /// partition it takes nothing, so a sender fills its own socket's
    /// buffer and blocks there.
    pub bytes_taken: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    /// Whether the network is partitioned; waiters wake when it heals.
    partitioned: tokio::sync::watch::Sender<bool>,
    stats: ProxyStats,
    /// Open connections' "go half-open now" switches.
    conns: Mutex<Vec<std::sync::Weak<Conn>>>,
    seed: AtomicU64,
}

impl Shared {
    fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wait while the network is partitioned.
    async fn until_healed(&self) {
        // The sender lives in `self`, so the wait cannot fail.
        let _ = self.partitioned.subscribe().wait_for(|p| !*p).await;
    }
}

/// One proxied connection's state, shared by its two directions.
struct Conn {
    /// Bytes forwarded both ways.
    carried: AtomicU64,
    /// Where the connection is reset (bytes carried), once a fault asks
    /// for resets; `u64::MAX` until then.
    reset_at: AtomicU64,
    half_open_at: Option<u64>,
    half_open: AtomicBool,
    stalled_until: Mutex<Option<Instant>>,
    /// Set when the connection is reset: both directions stop.
    reset: tokio::sync::watch::Sender<bool>,
    /// Which ends have closed: the client's (agent's) and the upstream's.
    client_closed: AtomicBool,
    upstream_closed: AtomicBool,
    opened: Instant,
    /// Per direction (up, down): bytes written, ms since `opened` of the
    /// last write, and what the writer is doing now.
    written: [AtomicU64; 2],
    last_write_ms: [AtomicU64; 2],
    doing: [Mutex<&'static str>; 2],
}

impl Conn {
    fn describe(&self) -> String {
        let dir = |i: usize| {
            format!(
                "{} bytes, last at {:.1} s, {}",
                self.written[i].load(Ordering::Relaxed),
                self.last_write_ms[i].load(Ordering::Relaxed) as f64 / 1000.0,
                self.doing[i].lock().unwrap_or_else(|p| p.into_inner())
            )
        };
        format!(
            "open {:.1} s, up: {}; down: {}; half-open {}, reset {}, client closed {}, upstream closed {}",
            self.opened.elapsed().as_secs_f64(),
            dir(0),
            dir(1),
            self.half_open.load(Ordering::Relaxed),
            *self.reset.borrow(),
            self.client_closed.load(Ordering::Relaxed),
            self.upstream_closed.load(Ordering::Relaxed),
        )
    }
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, faults: Faults) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(faults),
            partitioned: tokio::sync::watch::Sender::new(false),
            stats: ProxyStats::default(),
            conns: Mutex::new(Vec::new()),
            seed: AtomicU64::new(0x5eed_u64 ^ u64::from(addr.port())),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                s.stats.accepted.fetch_add(1, Ordering::Relaxed);
                s.stats.open.fetch_add(1, Ordering::Relaxed);
                let s2 = s.clone();
                tokio::spawn(async move {
                    connection(&s2, client).await;
                    s2.stats.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }

    pub fn set_faults(&self, f: Faults) {
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    /// Starts or ends a partition: nothing passes either way on any
    /// connection while it lasts.
    pub fn partition(&self, on: bool) {
        self.shared.partitioned.send_replace(on);
    }

    /// Every open connection goes half-open now.
    pub fn half_open_all(&self) -> usize {
        let conns = self.shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for c in conns.iter().filter_map(|w| w.upgrade()) {
            if !c.half_open.swap(true, Ordering::Relaxed) {
                self.shared.stats.half_opens.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    /// What the connections still open carried and which of their ends
    /// closed: for a test's message when one is left open.
    pub fn describe_open(&self) -> Vec<String> {
        let conns = self.shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns
            .iter()
            .filter_map(|w| w.upgrade())
            .map(|c| c.describe())
            .collect()
    }

    /// Connections with an end still open.
    pub fn open(&self) -> u64 {
        self.shared.stats.open.load(Ordering::Relaxed)
    }

    /// Stops accepting; open connections go on until their ends close.
    pub fn stop_accepting(&self) {
        self.accept.abort();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The proxy's dice: splitmix64 over a counter seeded from the port (no
/// dependency; a run's faults vary with its port).
fn dice(shared: &Shared) -> f64 {
    let mut x = shared
        .seed
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

async fn connection(shared: &Arc<Shared>, mut client: TcpStream) {
    // Across a partition the upstream sees nothing of a new connection;
    // what the client sends meanwhile is kept, and its giving up is noticed.
    let mut early = Vec::new();
    if *shared.partitioned.borrow() {
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                _ = shared.until_healed() => break,
                r = client.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => early.extend_from_slice(&buf[..n]),
                },
            }
        }
    }
    let upstream = match TcpStream::connect(shared.upstream).await {
        Ok(u) => u,
        Err(_) => {
            shared
                .stats
                .upstream_refused
                .fetch_add(1, Ordering::Relaxed);
            abort(&client);
            return;
        }
    };
    shared
        .stats
        .upstream_reached
        .fetch_add(1, Ordering::Relaxed);
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let f = shared.faults();
    let conn = Arc::new(Conn {
        carried: AtomicU64::new(0),
        reset_at: AtomicU64::new(u64::MAX),
        half_open_at: (dice(shared) < f.half_open_chance)
            .then(|| (dice(shared) * f.half_open_below.max(1) as f64) as u64),
        half_open: AtomicBool::new(false),
        stalled_until: Mutex::new(None),
        reset: tokio::sync::watch::Sender::new(false),
        client_closed: AtomicBool::new(false),
        upstream_closed: AtomicBool::new(false),
        opened: Instant::now(),
        written: Default::default(),
        last_write_ms: Default::default(),
        doing: [Mutex::new("new"), Mutex::new("new")],
    });
    {
        let mut conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|w| w.strong_count() > 0);
        conns.push(Arc::downgrade(&conn));
    }
    let (cr, cw) = client.into_split();
    let (ur, mut uw) = upstream.into_split();
    if !early.is_empty() && uw.write_all(&early).await.is_err() {
        return;
    }
    let up = pipe(shared.clone(), conn.clone(), cr, uw, Direction::Up);
    let down = pipe(shared.clone(), conn.clone(), ur, cw, Direction::Down);
    let (a, b) = tokio::join!(up, down);
    if *conn.reset.borrow() {
        // Both write halves came back: closed with SO_LINGER 0 and without
        // the shutdown a dropped write half sends, each end gets a RST
        // rather than a FIN.
        for w in [a, b].into_iter().flatten() {
            abort(w.as_ref());
            w.forget();
        }
    }
}

fn abort(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
}

/// One direction: a reader that stamps chunks with their delivery time and
/// a writer that delivers them, in order, under the faults. Returns the
/// write half so that a reset can abort it.
async fn pipe(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dir: Direction,
) -> Option<tokio::net::tcp::OwnedWriteHalf> {
    // None marks the end of the stream (EOF or error): passed on as a FIN.
    let (tx, mut rx) = mpsc::channel::<(Instant, Option<Vec<u8>>)>(64);
    let reader_shared = shared.clone();
    let reader_conn = conn.clone();
    let mut reset_for_reader = conn.reset.subscribe();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let r = tokio::select! {
                r = async {
                    reader_shared.until_healed().await;
                    from.read(&mut buf).await
                } => r,
                _ = reset_for_reader.wait_for(|r| *r) => return,
            };
            if let Ok(n) = r {
                reader_shared
                    .stats
                    .bytes_taken
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            let end = match dir {
                Direction::Up => &reader_conn.client_closed,
                Direction::Down => &reader_conn.upstream_closed,
            };
            let chunk = match r {
                Ok(0) => {
                    end.store(true, Ordering::Relaxed);
                    None
                }
                Err(_) => {
                    // That end reset the connection: the other one is told
                    // the same way, unless the network is dropping it all.
                    end.store(true, Ordering::Relaxed);
                    if !reader_conn.half_open.load(Ordering::Relaxed) {
                        reader_conn.reset.send_replace(true);
                        return;
                    }
                    None
                }
                Ok(n) => Some(buf[..n].to_vec()),
            };
            let end = chunk.is_none();
            let at = Instant::now() + reader_shared.faults().latency;
            // A full pipe waits for the writer, or for a reset that stops it.
            let sent = tokio::select! {
                s = tx.send((at, chunk)) => s.is_ok(),
                _ = reset_for_reader.wait_for(|r| *r) => false,
            };
            if !sent || end {
                return;
            }
        }
    };
    let writer = async {
        let mut next_free = Instant::now();
        let mut pending: VecDeque<u8> = VecDeque::new();
        let d = if dir == Direction::Up { 0 } else { 1 };
        let doing = |what: &'static str| {
            *conn.doing[d].lock().unwrap_or_else(|p| p.into_inner()) = what;
        };
        loop {
            doing("waiting for data");
            let Some((at, chunk)) = rx.recv().await else {
                break;
            };
            doing("latency");
            tokio::time::sleep_until(at).await;
            let Some(bytes) = chunk else {
                // The other end closed: a FIN, unless the network ate it.
                shared.until_healed().await;
                if !conn.half_open.load(Ordering::Relaxed) {
                    let _ = to.shutdown().await;
                }
                return true;
            };
            pending.extend(bytes);
            while !pending.is_empty() {
                shared.until_healed().await;
                let stall = *conn.stalled_until.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(t) = stall {
                    doing("stalled");
                    tokio::time::sleep_until(t).await;
                }
                let carried = conn.carried.load(Ordering::Relaxed);
                if let Some(h) = conn.half_open_at {
                    if carried >= h && !conn.half_open.swap(true, Ordering::Relaxed) {
                        shared.stats.half_opens.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if conn.half_open.load(Ordering::Relaxed) {
                    // Lost in the network; the reader keeps draining the
                    // sender, whose close is not passed on either.
                    pending.clear();
                    break;
                }
                let f = shared.faults();
                let mut n = pending.len().min(4096);
                if let Some(below) = f.reset_below {
                    // Decided on the first write under the fault: a
                    // connection open when resets begin is reset too.
                    let pick = carried + (dice(&shared) * below.max(1) as f64) as u64;
                    let r = match conn.reset_at.compare_exchange(
                        u64::MAX,
                        pick,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => pick,
                        Err(set) => set,
                    };
                    if carried >= r {
                        shared.stats.resets.fetch_add(1, Ordering::Relaxed);
                        conn.reset.send_replace(true);
                        return false;
                    }
                    n = n.min((r - carried) as usize);
                }
                if let Some(rate) = f.bytes_per_sec {
                    doing("rate limit");
                    tokio::time::sleep_until(next_free).await;
                    next_free = Instant::now() + Duration::from_secs_f64(n as f64 / rate as f64);
                }
                let part: Vec<u8> = pending.drain(..n).collect();
                doing("writing");
                if to.write_all(&part).await.is_err() {
                    // The receiving end is gone (a RST came back): the
                    // sending end learns it from a RST too.
                    conn.reset.send_replace(true);
                    return false;
                }
                conn.carried.fetch_add(n as u64, Ordering::Relaxed);
                conn.written[d].fetch_add(n as u64, Ordering::Relaxed);
                conn.last_write_ms[d]
                    .store(conn.opened.elapsed().as_millis() as u64, Ordering::Relaxed);
                let counter = match dir {
                    Direction::Up => &shared.stats.bytes_up,
                    Direction::Down => &shared.stats.bytes_down,
                };
                counter.fetch_add(n as u64, Ordering::Relaxed);
                if f.stall_chance > 0.0 && dice(&shared) < f.stall_chance {
                    shared.stats.stalls.fetch_add(1, Ordering::Relaxed);
                    *conn.stalled_until.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(Instant::now() + f.stall_for);
                }
            }
        }
        true
    };
    let mut reset_for_writer = conn.reset.subscribe();
    let (_, ended_normally) = tokio::join!(reader, async {
        tokio::select! {
            ok = writer => ok,
            _ = reset_for_writer.wait_for(|r| *r) => false,
        }
    });
    if ended_normally && !*conn.reset.borrow() {
        None
    } else {
        Some(to)
    }
}
