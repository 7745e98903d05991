//! A product's configuration as the agent last read it (with its identity),
//! and the product events of a part added or removed.

use crate::model::{
    configuration_changes, Component, ProductConfiguration, ProductSupplies, SupplyLevel,
};
use crate::store::StoreError;
use meterlink_proto::v1 as p;
use sqlx::Row;

use super::rows::Tx;
use super::Backend;

fn component_of(c: &p::Component) -> Component {
    Component {
        kind: c.kind.clone(),
        index: c.index,
        name: c.name.clone(),
        description: c.description.clone(),
        kind_type: c.r#type.clone(),
        capacity: c.capacity,
        level: c.level,
        media: c.media.clone(),
    }
}

/// Stored JSON that no longer parses is read as no configuration: the next
/// read replaces it (and the change is not made an event).
fn parse(text: &str) -> Option<Vec<Component>> {
    serde_json::from_str(text).ok()
}

impl Backend {
    /// Files the configuration an identity observation carries; an older
    /// read than the one stored changes nothing, an empty one (not read)
    /// neither. Parts added or removed since the stored read become product
    /// events at the read's time.
    pub(super) async fn file_configuration(
        &self,
        tx: &mut Tx,
        serial: &str,
        taken_at_ms: i64,
        read: &[p::Component],
    ) -> Result<(), StoreError> {
        if read.is_empty() {
            return Ok(());
        }
        let new: Vec<Component> = read.iter().map(component_of).collect();
        let stored = sqlx::query(
            "SELECT components, seen_at_ms, changed_at_ms FROM product_configuration WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        let (changes, changed_at) = match &stored {
            Some(r) => {
                let seen: i64 = r.get(1);
                if seen > taken_at_ms {
                    return Ok(());
                }
                let old = parse(&r.get::<String, _>(0));
                let changes = old
                    .map(|o| configuration_changes(&o, &new))
                    .unwrap_or_default();
                let at = if changes.is_empty() {
                    r.get::<i64, _>(2)
                } else {
                    taken_at_ms
                };
                (changes, at)
            }
            None => (Vec::new(), taken_at_ms),
        };
        let json = serde_json::to_string(&new).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO product_configuration (serial, components, seen_at_ms, changed_at_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (serial) DO UPDATE SET components = excluded.components,
             seen_at_ms = excluded.seen_at_ms, changed_at_ms = excluded.changed_at_ms",
        )
        .bind(serial)
        .bind(&json)
        .bind(taken_at_ms)
        .bind(changed_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        for (event, text) in changes {
            sqlx::query(
                "INSERT INTO product_events (serial, at_ms, event, text) VALUES ($1, $2, $3, $4)",
            )
            .bind(serial)
            .bind(taken_at_ms)
            .bind(event)
            .bind(text)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The product's configuration; no parts and no times when it was
    /// never read.
    pub async fn product_configuration(
        &self,
        serial: &str,
    ) -> Result<ProductConfiguration, StoreError> {
        let row = sqlx::query(
            "SELECT components, seen_at_ms, changed_at_ms FROM product_configuration WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(match row {
            Some(r) => ProductConfiguration::new(
                serial,
                parse(&r.get::<String, _>(0)).unwrap_or_default(),
                Some((r.get(1), r.get(2))),
            ),
            None => ProductConfiguration::new(serial, Vec::new(), None),
        })
    }

    /// Files the supplies a supplies observation carries; an older read
    /// than the one stored changes nothing.
    pub(super) async fn file_supplies(
        &self,
        tx: &mut Tx,
        serial: &str,
        taken_at_ms: i64,
        read: &[p::Supply],
    ) -> Result<(), StoreError> {
        let levels: Vec<SupplyLevel> = read.iter().map(supply_of).collect();
        let text = serde_json::to_string(&levels).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO product_supplies (serial, supplies, seen_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (serial) DO UPDATE SET supplies = excluded.supplies, seen_at_ms = excluded.seen_at_ms
             WHERE product_supplies.seen_at_ms <= excluded.seen_at_ms",
        )
        .bind(serial)
        .bind(text)
        .bind(taken_at_ms)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A product's supplies as last read (none when never read).
    pub async fn product_supplies(&self, serial: &str) -> Result<ProductSupplies, StoreError> {
        let row =
            sqlx::query("SELECT supplies, seen_at_ms FROM product_supplies WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(match row {
            // Stored text that no longer parses reads as not read: the
            // next read replaces it.
            Some(r) => ProductSupplies {
                supplies: serde_json::from_str(&r.get::<String, _>(0)).unwrap_or_default(),
                seen_at_ms: Some(r.get(1)),
            },
            None => ProductSupplies::default(),
        })
    }
}

fn supply_of(s: &p::Supply) -> SupplyLevel {
    // The percent the agent gives, else the level over the maximum when
    // both are real amounts (negative levels are the MIB's "unknown",
    // "some remaining").
    let percent = s.percent.or(match (s.level, s.max) {
        // In 128 bits: an agent may send any 64-bit level.
        (Some(l), Some(m)) if l >= 0 && m > 0 => {
            Some((i128::from(l) * 100 / i128::from(m)).clamp(0, 100) as u32)
        }
        _ => None,
    });
    SupplyLevel {
        index: s.index,
        description: s.description.clone(),
        kind: s.kind.clone(),
        percent,
        level: s.level,
        max: s.max,
        state: s.state.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supply(level: Option<i64>, max: Option<i64>) -> p::Supply {
        p::Supply {
            level,
            max,
            ..Default::default()
        }
    }

    #[test]
    fn a_supplys_percent_is_its_level_over_its_maximum_whatever_the_numbers() {
        let percent = |l, m| supply_of(&supply(l, m)).percent;
        assert_eq!(percent(Some(250), Some(1000)), Some(25));
        // Found by fuzzing: the level times 100 overflowed 64 bits.
        assert_eq!(percent(Some(i64::MAX), Some(1)), Some(100));
        assert_eq!(percent(Some(i64::MAX), Some(i64::MAX)), Some(100));
        assert_eq!(percent(Some(i64::MAX / 2), Some(i64::MAX)), Some(49));
        assert_eq!(percent(Some(-3), Some(1000)), None);
        assert_eq!(percent(Some(5), Some(0)), None);
        assert_eq!(percent(Some(5), None), None);
    }
}
