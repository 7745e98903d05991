//! The reads a profile's plan asks for: GET of many OIDs (v1 noSuchName
//! recovery, tooBig splits) and table columns walked side by side.

use super::{status_name, Ask, CredentialSet, DeviceMemory, Engine, SnmpError};
use crate::snmp::message::{error_status, Oid, PduType, Value, VarBind, Version};
use std::net::SocketAddr;

impl Engine {
    /// GET of many OIDs. Missing objects come back as NoSuchObject, also on v1
    /// (whose noSuchName error fails the whole PDU: the culprit is dropped and
    /// the rest asked again). Large requests that draw tooBig are split.
    pub async fn get(
        &self,
        addr: SocketAddr,
        cred: &CredentialSet,
        mem: &mut DeviceMemory,
        oids: &[Oid],
    ) -> Result<Vec<VarBind>, SnmpError> {
        let mut out: Vec<VarBind> = Vec::with_capacity(oids.len());
        let mut queue: Vec<Vec<Oid>> = vec![oids.to_vec()];
        let mut missing: Vec<Oid> = Vec::new();
        let mut rounds = 0;
        while let Some(batch) = queue.pop() {
            if batch.is_empty() {
                continue;
            }
            rounds += 1;
            if rounds > oids.len() * 2 + 8 {
                return Err(SnmpError::Malformed {
                    addr,
                    what: "device keeps failing GET requests".into(),
                });
            }
            let r = self.request(addr, cred, mem, Ask::Get, &batch).await?;
            match r.error_status {
                error_status::NO_ERROR => {
                    if r.varbinds.len() != batch.len() {
                        return Err(SnmpError::Malformed {
                            addr,
                            what: format!(
                                "GET of {} objects answered with {}",
                                batch.len(),
                                r.varbinds.len()
                            ),
                        });
                    }
                    out.extend(r.varbinds);
                }
                error_status::NO_SUCH_NAME
                    if r.error_index >= 1 && (r.error_index as usize) <= batch.len() =>
                {
                    let mut b = batch;
                    missing.push(b.remove(r.error_index as usize - 1));
                    queue.push(b);
                }
                error_status::TOO_BIG | error_status::GEN_ERR if batch.len() > 1 => {
                    let mut a = batch;
                    let b = a.split_off(a.len() / 2);
                    queue.push(b);
                    queue.push(a);
                }
                error_status::NO_SUCH_NAME | error_status::GEN_ERR => {
                    missing.extend(batch);
                }
                s => {
                    return Err(SnmpError::Status {
                        addr,
                        status: s,
                        name: status_name(s),
                        index: r.error_index,
                    })
                }
            }
        }
        out.extend(
            missing
                .into_iter()
                .map(|o| VarBind::new(o, Value::NoSuchObject)),
        );
        Ok(out)
    }

    /// Walks several table columns side by side: one GETBULK (or GETNEXT on
    /// v1 and on devices with broken GETBULK) carries every column still
    /// going. A column ends when it leaves its subtree, at endOfMibView, at
    /// `max_rows`, or when the device returns a non-increasing OID.
    pub async fn walk_columns(
        &self,
        addr: SocketAddr,
        cred: &CredentialSet,
        mem: &mut DeviceMemory,
        roots: &[Oid],
    ) -> Result<Vec<VarBind>, SnmpError> {
        struct Col {
            root: Oid,
            last: Oid,
            rows: usize,
        }
        let mut live: Vec<Col> = roots
            .iter()
            .map(|r| Col {
                root: r.clone(),
                last: r.clone(),
                rows: 0,
            })
            .collect();
        let mut out = Vec::new();
        let mut reps = self.cfg.max_repetitions.max(1) as i64;
        let mut first_round = true;
        let mut guard = 0usize;
        while !live.is_empty() {
            guard += 1;
            if guard > self.cfg.max_rows + 64 {
                tracing::warn!(%addr, "walk stopped: too many requests");
                break;
            }
            let use_bulk = cred.version() != Version::V1 && !mem.bulk_broken;
            let asks: Vec<Oid> = live.iter().map(|c| c.last.clone()).collect();
            let (kind, r) = if use_bulk {
                // GETBULK runs every column `per` rows on, also past its
                // end: ask little while many columns are live (most tables
                // are short), more once only the long ones remain.
                let budget = if first_round { 120 } else { 240 };
                let per = (reps as usize).min((budget / asks.len()).max(2)) as i64;
                let r = self
                    .request(
                        addr,
                        cred,
                        mem,
                        Ask::GetBulk {
                            max_repetitions: per,
                        },
                        &asks,
                    )
                    .await;
                (PduType::GetBulk, r)
            } else {
                (
                    PduType::GetNext,
                    self.request(addr, cred, mem, Ask::GetNext, &asks).await,
                )
            };
            let r = match r {
                Ok(r) => r,
                Err(e) if kind == PduType::GetBulk && e.is_timeout() => {
                    // Some agents never answer GETBULK at all.
                    tracing::info!(%addr, "GETBULK unanswered; using GETNEXT for this device");
                    mem.bulk_broken = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            first_round = false;
            if r.error_status != error_status::NO_ERROR || r.varbinds.is_empty() {
                if kind == PduType::GetBulk {
                    if r.error_status == error_status::TOO_BIG && reps > 1 {
                        reps = (reps / 2).max(1);
                        continue;
                    }
                    tracing::info!(%addr, status = r.error_status, "GETBULK answered badly; using GETNEXT for this device");
                    mem.bulk_broken = true;
                    continue;
                }
                if r.error_status == error_status::NO_SUCH_NAME {
                    // v1 end of MIB: the column named by error-index is done.
                    let i = r.error_index as usize;
                    if i >= 1 && i <= live.len() {
                        live.remove(i - 1);
                        continue;
                    }
                    break;
                }
                if r.error_status == error_status::TOO_BIG && live.len() > 1 {
                    // Walk the columns in two halves: recurse on fewer columns.
                    let half = live.split_off(live.len() / 2);
                    let first: Vec<Oid> = live.iter().map(|c| c.root.clone()).collect();
                    let second: Vec<Oid> = half.iter().map(|c| c.root.clone()).collect();
                    out.extend(Box::pin(self.walk_columns(addr, cred, mem, &first)).await?);
                    out.extend(Box::pin(self.walk_columns(addr, cred, mem, &second)).await?);
                    return Ok(out);
                }
                return Err(SnmpError::Status {
                    addr,
                    status: r.error_status,
                    name: status_name(r.error_status),
                    index: r.error_index,
                });
            }
            let n = live.len();
            let mut done = vec![false; n];
            let mut broken_bulk = false;
            for (i, vb) in r.varbinds.into_iter().enumerate() {
                let c = i % n;
                if done[c] {
                    continue;
                }
                let col = &mut live[c];
                if vb.value == Value::EndOfMibView || !vb.oid.starts_with(&col.root) {
                    done[c] = true;
                    continue;
                }
                if vb.oid <= col.last {
                    if kind == PduType::GetBulk {
                        broken_bulk = true;
                    } else {
                        tracing::warn!(%addr, column = %col.root, oid = %vb.oid, "device returned a non-increasing OID; column walk stopped");
                    }
                    done[c] = true;
                    continue;
                }
                col.last = vb.oid.clone();
                col.rows += 1;
                out.push(vb);
                if col.rows >= self.cfg.max_rows {
                    tracing::warn!(%addr, column = %col.root, rows = col.rows, "row bound reached; column walk stopped");
                    done[c] = true;
                }
            }
            if broken_bulk {
                // Retry the affected columns from their last good row with GETNEXT.
                tracing::info!(%addr, "GETBULK returned non-increasing OIDs; using GETNEXT for this device");
                mem.bulk_broken = true;
                for (c, d) in done.iter_mut().enumerate() {
                    if live[c].rows < self.cfg.max_rows {
                        *d = false;
                    }
                }
            }
            let mut k = 0;
            live.retain(|_| {
                let keep = !done[k];
                k += 1;
                keep
            });
        }
        Ok(out)
    }
}
