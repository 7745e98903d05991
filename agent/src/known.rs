//! The devices the daemon polls, as discovery learns them. Pure: a scan's
//! printers in, the polled list and what changed out.
//!
//! Discovery merges into what is known instead of replacing it: a printer
//! that is off during a scan stays polled (its reads fail until it is back,
//! so the collector sees it silent only if it really is), and is dropped
//! only after `max_missed` scans in a row without it. A printer is known by
//! its serial number (invariant 4): one that answers at another address is
//! followed there, not polled twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

/// A printer a scan found: where, and its serial when it told one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub addr: SocketAddr,
    pub serial: Option<String>,
}

/// What a merge changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added {
        addr: SocketAddr,
        serial: Option<String>,
    },
    Moved {
        serial: String,
        from: SocketAddr,
        to: SocketAddr,
    },
    /// Missed a scan but kept: polled until `max_missed` scans in a row.
    Missed {
        addr: SocketAddr,
        serial: Option<String>,
        missed: u32,
    },
    Dropped {
        addr: SocketAddr,
        serial: Option<String>,
        missed: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Device {
    serial: Option<String>,
    missed: u32,
}

/// The known printers by address; `T` is what the daemon keeps per device
/// (the credential sets to try).
#[derive(Debug, Clone)]
pub struct KnownDevices<T> {
    devices: BTreeMap<SocketAddr, (Device, T)>,
    /// Scans a device may miss in a row before it is dropped.
    pub max_missed: u32,
}

impl<T: Clone> KnownDevices<T> {
    pub fn new(max_missed: u32) -> Self {
        KnownDevices {
            devices: BTreeMap::new(),
            max_missed,
        }
    }

    /// The devices to poll, in address order.
    pub fn list(&self) -> Vec<(SocketAddr, T)> {
        self.devices
            .iter()
            .map(|(a, (_, t))| (*a, t.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Forgets devices whose address is no longer in the targets (the
    /// configuration changed): `keep` says which addresses still are.
    pub fn retain_addresses(&mut self, keep: impl Fn(&SocketAddr) -> bool) {
        self.devices.retain(|a, _| keep(a));
    }

    /// Merges one scan: `found` with what each found device is polled with.
    pub fn merge(&mut self, found: Vec<(Seen, T)>) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut seen_now: BTreeSet<SocketAddr> = BTreeSet::new();
        // Where each known serial answers: one lookup per printer found, not
        // a walk over all devices (a scan of a large site finds thousands).
        let mut by_serial: HashMap<String, SocketAddr> = self
            .devices
            .iter()
            .filter_map(|(a, (d, _))| d.serial.clone().map(|s| (s, *a)))
            .collect();
        for (s, t) in found {
            seen_now.insert(s.addr);
            // The same serial known at another address: the printer moved.
            let moved_from = s
                .serial
                .as_ref()
                .and_then(|serial| by_serial.get(serial).copied())
                .filter(|from| *from != s.addr);
            if let (Some(from), Some(serial)) = (moved_from, &s.serial) {
                self.devices.remove(&from);
                changes.push(Change::Moved {
                    serial: serial.clone(),
                    from,
                    to: s.addr,
                });
            } else if !self.devices.contains_key(&s.addr) {
                changes.push(Change::Added {
                    addr: s.addr,
                    serial: s.serial.clone(),
                });
            }
            // Whatever answers at an address now is what is polled there
            // (another printer may have taken the address of one that moved).
            let previous = self.devices.insert(
                s.addr,
                (
                    Device {
                        serial: s.serial.clone(),
                        missed: 0,
                    },
                    t,
                ),
            );
            if let Some(old) = previous.and_then(|(d, _)| d.serial) {
                if by_serial.get(&old) == Some(&s.addr) {
                    by_serial.remove(&old);
                }
            }
            if let Some(serial) = s.serial {
                by_serial.insert(serial, s.addr);
            }
        }
        let max = self.max_missed;
        let mut dropped = Vec::new();
        for (addr, (d, _)) in self.devices.iter_mut() {
            if seen_now.contains(addr) {
                continue;
            }
            d.missed += 1;
            if d.missed > max {
                dropped.push(*addr);
                changes.push(Change::Dropped {
                    addr: *addr,
                    serial: d.serial.clone(),
                    missed: d.missed,
                });
            } else {
                changes.push(Change::Missed {
                    addr: *addr,
                    serial: d.serial.clone(),
                    missed: d.missed,
                });
            }
        }
        for a in dropped {
            self.devices.remove(&a);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 161))
    }

    fn seen(last: u8, serial: &str) -> (Seen, ()) {
        (
            Seen {
                addr: a(last),
                serial: Some(serial.into()),
            },
            (),
        )
    }

    fn addrs(k: &KnownDevices<()>) -> Vec<SocketAddr> {
        k.list().into_iter().map(|(a, _)| a).collect()
    }

    #[test]
    fn a_printer_off_during_a_scan_stays_until_it_misses_too_many() {
        let mut k = KnownDevices::new(2);
        k.merge(vec![seen(1, "A"), seen(2, "B")]);
        // B is off for two scans: still polled.
        for missed in 1..=2 {
            let c = k.merge(vec![seen(1, "A")]);
            assert_eq!(
                c,
                vec![Change::Missed {
                    addr: a(2),
                    serial: Some("B".into()),
                    missed
                }]
            );
            assert_eq!(addrs(&k), vec![a(1), a(2)]);
        }
        // Back before the third miss: the count starts again.
        assert!(k.merge(vec![seen(1, "A"), seen(2, "B")]).is_empty());
        for _ in 0..2 {
            k.merge(vec![seen(1, "A")]);
        }
        assert_eq!(addrs(&k), vec![a(1), a(2)]);
        // The third scan in a row without it drops it.
        let c = k.merge(vec![seen(1, "A")]);
        assert_eq!(
            c,
            vec![Change::Dropped {
                addr: a(2),
                serial: Some("B".into()),
                missed: 3
            }]
        );
        assert_eq!(addrs(&k), vec![a(1)]);
    }

    #[test]
    fn a_printer_that_moves_is_followed_by_its_serial() {
        let mut k = KnownDevices::new(3);
        k.merge(vec![seen(1, "A"), seen(2, "B")]);
        let c = k.merge(vec![seen(1, "A"), seen(7, "B")]);
        assert_eq!(
            c,
            vec![Change::Moved {
                serial: "B".into(),
                from: a(2),
                to: a(7)
            }]
        );
        // Polled once, at its new address.
        assert_eq!(addrs(&k), vec![a(1), a(7)]);
    }

    #[test]
    fn addresses_swapped_between_two_printers_stay_two_devices() {
        let mut k = KnownDevices::new(3);
        k.merge(vec![seen(1, "A"), seen(2, "B")]);
        k.merge(vec![seen(1, "B"), seen(2, "A")]);
        assert_eq!(addrs(&k), vec![a(1), a(2)]);
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn a_printer_without_a_serial_is_known_by_its_address() {
        let mut k: KnownDevices<()> = KnownDevices::new(0);
        let anon = (
            Seen {
                addr: a(9),
                serial: None,
            },
            (),
        );
        assert_eq!(
            k.merge(vec![anon.clone()]),
            vec![Change::Added {
                addr: a(9),
                serial: None
            }]
        );
        assert!(k.merge(vec![anon]).is_empty());
        // max_missed 0: the first scan without it drops it.
        k.merge(vec![]);
        assert!(k.is_empty());
    }

    #[test]
    fn devices_outside_the_targets_are_forgotten() {
        let mut k = KnownDevices::new(3);
        k.merge(vec![seen(1, "A"), seen(2, "B")]);
        k.retain_addresses(|x| *x == a(2));
        assert_eq!(addrs(&k), vec![a(2)]);
    }
}
