//! A product's configuration: paper trays and their media, output bins
//! (finisher trays among them), media paths (a duplex unit) and the devices
//! Host Resources lists, as the agent last read them. Pure: the stored and
//! the new list in, the product events of the change out.

use serde::{Deserialize, Serialize};

/// One part of a product's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// input (a paper tray), output (a bin), media_path, device.
    pub kind: String,
    /// Its row in the device's table.
    pub index: u32,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The MIB's name of its type (sheetFeedAutoRemovableTray, removableBin,
    /// longEdgeBindingDuplex, hrDeviceNetwork...).
    #[serde(rename = "type", default)]
    pub kind_type: String,
    /// Capacity and current level in sheets; -2 unknown, -3 some remain.
    #[serde(default)]
    pub capacity: Option<i64>,
    #[serde(default)]
    pub level: Option<i64>,
    /// The paper loaded (name, size, type), for a tray.
    #[serde(default)]
    pub media: String,
}

impl Component {
    /// How people name it: its name, else its description, else its type.
    pub fn label(&self) -> &str {
        [&self.name, &self.description, &self.kind_type]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
            .unwrap_or("unnamed")
    }

    /// What makes it the same part from one read to the next: its table,
    /// row and name (a level or the paper loaded may change).
    fn key(&self) -> (&str, u32, &str) {
        (&self.kind, self.index, self.label())
    }
}

/// A product's configuration as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductConfiguration {
    pub serial: String,
    pub components: Vec<Component>,
    /// When the agent last read it; None: never.
    pub seen_at_ms: Option<i64>,
    /// When a part was last added or removed (or first read).
    pub changed_at_ms: Option<i64>,
    /// A duplex media path is there.
    pub duplex: bool,
}

impl ProductConfiguration {
    pub fn new(serial: &str, components: Vec<Component>, seen: Option<(i64, i64)>) -> Self {
        let duplex = components
            .iter()
            .any(|c| c.kind == "media_path" && c.kind_type.ends_with("Duplex"));
        ProductConfiguration {
            serial: serial.to_string(),
            components,
            seen_at_ms: seen.map(|s| s.0),
            changed_at_ms: seen.map(|s| s.1),
            duplex,
        }
    }
}

/// The product events between the stored configuration and a new read:
/// `component_removed` and `component_added`, each naming the part.
pub fn configuration_changes(old: &[Component], new: &[Component]) -> Vec<(&'static str, String)> {
    let name = |c: &Component| {
        let kind = match c.kind.as_str() {
            "input" => "paper tray",
            "output" => "output bin",
            "media_path" => "media path",
            _ => "device",
        };
        format!("{kind} {}: {}", c.index, c.label())
    };
    let mut out = Vec::new();
    for o in old {
        if !new.iter().any(|n| n.key() == o.key()) {
            out.push(("component_removed", name(o)));
        }
    }
    for n in new {
        if !old.iter().any(|o| o.key() == n.key()) {
            out.push(("component_added", name(n)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tray(index: u32, name: &str, level: i64) -> Component {
        Component {
            kind: "input".into(),
            index,
            name: name.into(),
            description: String::new(),
            kind_type: "sheetFeedAutoRemovableTray".into(),
            capacity: Some(550),
            level: Some(level),
            media: "A4".into(),
        }
    }

    #[test]
    fn a_removed_tray_and_an_added_one_are_events_a_level_is_not() {
        let old = vec![tray(1, "Drawer 1", 100), tray(2, "Drawer 2", 50)];
        let mut new = vec![tray(1, "Drawer 1", 20)];
        assert_eq!(
            configuration_changes(&old, &new),
            vec![("component_removed", "paper tray 2: Drawer 2".to_string())]
        );
        new.push(tray(3, "Paper Deck", 0));
        new[0].media = "A3".into();
        assert_eq!(
            configuration_changes(&old, &new),
            vec![
                ("component_removed", "paper tray 2: Drawer 2".to_string()),
                ("component_added", "paper tray 3: Paper Deck".to_string())
            ]
        );
        assert!(configuration_changes(&old, &old).is_empty());
    }

    #[test]
    fn duplex_from_the_media_paths() {
        let path = |t: &str| Component {
            kind: "media_path".into(),
            index: 1,
            name: String::new(),
            description: String::new(),
            kind_type: t.into(),
            capacity: None,
            level: None,
            media: String::new(),
        };
        assert!(ProductConfiguration::new("S", vec![path("longEdgeBindingDuplex")], None).duplex);
        assert!(!ProductConfiguration::new("S", vec![path("simplex")], None).duplex);
        assert_eq!(path("").label(), "unnamed");
    }
}

/// One supply as the agent last read it (Printer MIB prtMarkerSupplies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyLevel {
    pub index: u32,
    pub description: String,
    /// toner, drum, wasteToner, ...
    pub kind: String,
    /// Percent left, when the device says (or it follows from level and max).
    pub percent: Option<u32>,
    pub level: Option<i64>,
    pub max: Option<i64>,
    /// ok, low, empty, unknown.
    pub state: String,
}

/// A product's supplies as the agent last read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductSupplies {
    pub supplies: Vec<SupplyLevel>,
    /// When they were read; None: never.
    pub seen_at_ms: Option<i64>,
}
