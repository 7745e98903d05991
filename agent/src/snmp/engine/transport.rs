//! The sockets: a small pool per address family shared by every device,
//! answers matched to requests by request id and source address (invariant 9),
//! retries with backoff.

use super::pacing::Pacer;
use super::{CredentialSet, Engine, EngineStats, SnmpError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

pub(super) struct Pending {
    peer: SocketAddr,
    tx: oneshot::Sender<Vec<u8>>,
}

pub(super) struct Transport {
    pub(super) v4: Vec<Arc<UdpSocket>>,
    pub(super) v6: Vec<Arc<UdpSocket>>,
    pub(super) pending: Mutex<HashMap<i32, Pending>>,
    pub(super) next_id: AtomicI32,
    pub(super) stats: EngineStats,
    /// Set when packets are rate-limited.
    pub(super) pacer: Option<Pacer>,
    /// Dropped with the transport: the receive loops see the channel close
    /// and end, releasing their sockets (an engine made anew for pushed
    /// settings must not leave the old one's tasks and sockets behind).
    pub(super) closed: tokio::sync::watch::Sender<()>,
}

impl Transport {
    pub(super) fn socket_for(&self, addr: &SocketAddr) -> Option<&Arc<UdpSocket>> {
        let pool = if addr.is_ipv4() { &self.v4 } else { &self.v6 };
        if pool.is_empty() {
            return None;
        }
        let h = match addr {
            SocketAddr::V4(a) => u32::from(*a.ip()) as usize ^ a.port() as usize,
            SocketAddr::V6(a) => a.ip().octets()[15] as usize ^ a.port() as usize,
        };
        Some(&pool[h % pool.len()])
    }

    pub(super) fn new_id(&self) -> i32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
            if id != 0 {
                return id;
            }
        }
    }

    pub(super) fn receive_loop(self: Arc<Self>, sock: Arc<UdpSocket>) {
        let weak = Arc::downgrade(&self);
        let mut closed = self.closed.subscribe();
        drop(self);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let received = tokio::select! {
                    r = sock.recv_from(&mut buf) => r,
                    _ = closed.changed() => return,
                };
                let (n, from) = match received {
                    Ok(x) => x,
                    // ICMP errors surface here on some systems; the request times out instead.
                    Err(_) => continue,
                };
                let Some(t) = weak.upgrade() else { return };
                let bytes = &buf[..n];
                let id = match peek_id(bytes) {
                    Some(id) => id,
                    None => {
                        t.stats.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%from, len = n, "dropped an undecodable SNMP packet");
                        continue;
                    }
                };
                let waiter = {
                    let mut p = t.pending.lock().expect("pending map lock");
                    match p.get(&id) {
                        Some(w) if same_peer(&w.peer, &from) => p.remove(&id),
                        _ => None,
                    }
                };
                match waiter {
                    Some(w) => {
                        t.stats.responses.fetch_add(1, Ordering::Relaxed);
                        let _ = w.tx.send(bytes.to_vec());
                    }
                    None => {
                        t.stats.stray.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%from, id, "dropped a response nobody waits for (late, duplicate or spoofed)");
                    }
                }
            }
        });
    }
}

pub(super) fn same_peer(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// Reads the request id (v1/v2c) or msgID (v3) without decoding the rest.
pub(super) fn peek_id(bytes: &[u8]) -> Option<i32> {
    crate::snmp::message::peek_id(bytes)
}

impl Engine {
    /// Sends one message and waits for the matching answer, with retries.
    pub(super) async fn exchange(
        &self,
        addr: SocketAddr,
        id: i32,
        packet: &[u8],
        cred: &CredentialSet,
    ) -> Result<Vec<u8>, SnmpError> {
        let sock = self
            .transport
            .socket_for(&addr)
            .ok_or_else(|| SnmpError::Io {
                addr,
                source: std::io::Error::other(
                    "no socket for this address family (is IPv6 enabled?)",
                ),
            })?
            .clone();
        let (tx, mut rx) = oneshot::channel();
        self.transport
            .pending
            .lock()
            .expect("pending map lock")
            .insert(id, Pending { peer: addr, tx });
        let _guard = PendingGuard {
            t: &self.transport,
            id,
        };
        let mut wait = self.cfg.timeout;
        for _attempt in 0..=self.cfg.retries {
            if let Some(pacer) = &self.transport.pacer {
                pacer.wait().await;
            }
            self.transport
                .stats
                .requests_sent
                .fetch_add(1, Ordering::Relaxed);
            if let Err(e) = sock.send_to(packet, addr).await {
                return Err(SnmpError::Io { addr, source: e });
            }
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(bytes)) => return Ok(bytes),
                Ok(Err(_)) => unreachable!("sender lives in the pending map until removed"),
                Err(_) => {
                    wait = wait.mul_f64(self.cfg.backoff.max(1.0));
                }
            }
        }
        self.transport
            .stats
            .timeouts
            .fetch_add(1, Ordering::Relaxed);
        Err(SnmpError::Timeout {
            addr,
            credential: cred.name.clone(),
            version: cred.version().name(),
            attempts: self.cfg.retries + 1,
        })
    }
}

pub(super) struct PendingGuard<'a> {
    t: &'a Transport,
    id: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.t
            .pending
            .lock()
            .expect("pending map lock")
            .remove(&self.id);
    }
}

pub(super) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Bursts of answers from hundreds of devices must not overflow the queue.
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

#[cfg(test)]
mod tests {
    use crate::snmp::engine::{Engine, EngineConfig};

    #[tokio::test]
    async fn a_dropped_engine_leaves_no_receive_task_behind() {
        let rt = tokio::runtime::Handle::current();
        let before = rt.metrics().num_alive_tasks();
        let engine = Engine::new(EngineConfig::default()).await.expect("engine");
        assert!(rt.metrics().num_alive_tasks() > before, "receive loops run");
        drop(engine);
        // The loops end when they are next polled; each yield gives them a turn.
        for _ in 0..100 {
            if rt.metrics().num_alive_tasks() == before {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!(
            "{} tasks left after the engine was dropped",
            rt.metrics().num_alive_tasks() - before
        );
    }
}
