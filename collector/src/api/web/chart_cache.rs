//! Charts made lately, kept per product, counter and width: a page's
//! chart is asked for by everyone who opens the page, and making it reads
//! the counter's whole history. An entry is used while the product's
//! newest reading is the one it was made with, for at most a minute (a
//! reading filed with an older time than the newest, typed in late by
//! hand, shows within that minute).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an entry may be used even if nothing newer was filed.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// Entries kept; the oldest goes when a new one comes.
const ENTRIES: usize = 512;

/// (serial, counter, width)
type Key = (String, String, u32);

/// What an entry was made from: the product's last report and the
/// counter's current value.
pub type Version = (Option<i64>, Option<u64>);

struct Entry {
    version: Version,
    made: Instant,
    svg: Arc<String>,
}

#[derive(Clone, Default)]
pub struct ChartCache(Arc<Mutex<HashMap<Key, Entry>>>);

impl ChartCache {
    /// The chart made from `version`, if one is fresh.
    pub fn get(
        &self,
        serial: &str,
        counter: &str,
        width: u32,
        version: Version,
    ) -> Option<Arc<String>> {
        let map = self.0.lock().ok()?;
        let e = map.get(&(serial.to_string(), counter.to_string(), width))?;
        (e.version == version && e.made.elapsed() < FRESH_FOR).then(|| e.svg.clone())
    }

    pub fn put(&self, serial: &str, counter: &str, width: u32, version: Version, svg: Arc<String>) {
        let Ok(mut map) = self.0.lock() else {
            return;
        };
        if map.len() >= ENTRIES {
            map.retain(|_, e| e.made.elapsed() < FRESH_FOR);
        }
        if map.len() >= ENTRIES {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.made)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            (serial.to_string(), counter.to_string(), width),
            Entry {
                version,
                made: Instant::now(),
                svg,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_serves_its_version_only() {
        let c = ChartCache::default();
        let svg = Arc::new("<svg/>".to_string());
        c.put("A-1", "canon.101", 720, (Some(1), Some(10)), svg.clone());
        assert_eq!(
            c.get("A-1", "canon.101", 720, (Some(1), Some(10))),
            Some(svg)
        );
        // A newer reading, another width, another counter: made anew.
        assert!(c
            .get("A-1", "canon.101", 720, (Some(2), Some(11)))
            .is_none());
        assert!(c
            .get("A-1", "canon.101", 360, (Some(1), Some(10)))
            .is_none());
        assert!(c
            .get("A-1", "canon.108", 720, (Some(1), Some(10)))
            .is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = ChartCache::default();
        for i in 0..ENTRIES + 10 {
            c.put(
                &format!("P{i}"),
                "c",
                720,
                (None, None),
                Arc::new(String::new()),
            );
        }
        assert_eq!(c.0.lock().unwrap().len(), ENTRIES);
        assert!(c
            .get(&format!("P{}", ENTRIES + 9), "c", 720, (None, None))
            .is_some());
    }
}
