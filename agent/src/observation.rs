//! What one read of a device yields: identity, raw counters, supplies and
//! status. This is the `probe --json` shape and what the agent buffers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceReading {
    pub address: String,
    pub snmp_version: String,
    /// The profile that read the device.
    pub profile: String,
    pub identity: Identity,
    /// Raw counters as read, one per source OID.
    pub counters: Vec<Counter>,
    /// Totals derived from the raw counters by the profile's named mapping.
    pub derived: Vec<DerivedCounter>,
    pub supplies: Vec<Supply>,
    pub status: Status,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub sys_object_id: Option<String>,
    pub sys_descr: Option<String>,
    pub mac: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    /// Stable id: `canon.<number>`, `prt.life`, `prt.poweron`.
    pub id: String,
    pub name: String,
    pub value: u64,
    pub unit: String,
    pub oid: String,
    /// Bits after which the device's counter wraps to zero, if it does.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wraps_at_bits: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivedCounter {
    pub id: String,
    pub name: String,
    pub value: u64,
    /// The raw counter ids summed.
    pub from: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supply {
    pub index: u32,
    pub description: String,
    pub kind: String,
    /// As reported; negative values are the Printer-MIB's special meanings.
    pub level: Option<i64>,
    pub max: Option<i64>,
    /// Only when level and max are real quantities.
    pub percent: Option<u8>,
    /// ok, low, empty, some_remaining, unknown, other.
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub device: Option<String>,
    pub printer: Option<String>,
    pub errors: Vec<String>,
    pub alerts: Vec<Alert>,
    pub console: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub index: u32,
    pub severity: String,
    pub training_level: String,
    pub group: String,
    pub code: i64,
    pub code_name: String,
    pub description: String,
}
