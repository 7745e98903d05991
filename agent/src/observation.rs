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
    /// Paper trays, output bins, media paths and the devices Host
    /// Resources lists, as read.
    #[serde(default)]
    pub configuration: Vec<Component>,
}

/// One part of a device's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// input (a paper tray), output (a bin), media_path, device.
    pub kind: String,
    pub index: u32,
    pub name: String,
    pub description: String,
    /// The MIB's name of its type.
    #[serde(rename = "type")]
    pub kind_type: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub level: Option<i64>,
    /// The paper loaded (name, size, type), for a tray.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub media: String,
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

/// The observations one read yields, in the wire form the agent buffers and
/// sends: identity, meter reading, status (with alerts), supplies. Sequence
/// numbers are assigned by the buffer.
pub fn to_observations(
    r: &DeviceReading,
    taken_at_ms: i64,
    with_meter: bool,
) -> Vec<meterlink_proto::v1::Observation> {
    use meterlink_proto::v1 as p;
    use p::observation::Body;
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let obs = |body: Body| p::Observation {
        seq: 0,
        taken_at_ms,
        device_address: r.address.clone(),
        serial: s(&r.identity.serial),
        body: Some(body),
    };
    let id = &r.identity;
    let mut out = vec![obs(Body::Identity(p::Identity {
        vendor: s(&id.vendor),
        model: s(&id.model),
        serial: s(&id.serial),
        firmware: s(&id.firmware),
        sys_object_id: s(&id.sys_object_id),
        sys_descr: s(&id.sys_descr),
        mac: s(&id.mac),
        profile: r.profile.clone(),
        components: r
            .configuration
            .iter()
            .map(|c| p::Component {
                kind: c.kind.clone(),
                index: c.index,
                name: c.name.clone(),
                description: c.description.clone(),
                r#type: c.kind_type.clone(),
                capacity: c.capacity,
                level: c.level,
                media: c.media.clone(),
            })
            .collect(),
    }))];
    if with_meter {
        out.push(obs(Body::Meter(p::MeterReading {
            counters: r
                .counters
                .iter()
                .map(|c| p::CounterValue {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    value: c.value,
                    unit: c.unit.clone(),
                    oid: c.oid.clone(),
                    wraps_at_bits: c.wraps_at_bits.unwrap_or(0) as u32,
                })
                .collect(),
        })));
    }
    let st = &r.status;
    out.push(obs(Body::Status(p::DeviceStatus {
        device: s(&st.device),
        printer: s(&st.printer),
        errors: st.errors.clone(),
        alerts: st
            .alerts
            .iter()
            .map(|a| p::Alert {
                index: a.index,
                severity: a.severity.clone(),
                training_level: a.training_level.clone(),
                group: a.group.clone(),
                code: a.code,
                code_name: a.code_name.clone(),
                description: a.description.clone(),
            })
            .collect(),
        console: st.console.clone(),
    })));
    out.push(obs(Body::Supplies(p::Supplies {
        supplies: r
            .supplies
            .iter()
            .map(|x| p::Supply {
                index: x.index,
                description: x.description.clone(),
                kind: x.kind.clone(),
                level: x.level,
                max: x.max,
                percent: x.percent.map(|p| p as u32),
                state: x.state.clone(),
            })
            .collect(),
    })));
    out
}
