//! PDUs, their types and error statuses, and protocol versions.

use super::{Oid, Value, VarBind};
use crate::snmp::ber::{self, DResult, DecodeError, Reader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PduType {
    Get,
    GetNext,
    Response,
    Set,
    GetBulk,
    Inform,
    TrapV2,
    Report,
}

impl PduType {
    #[inline]
    pub(crate) fn tag(self) -> u8 {
        match self {
            PduType::Get => 0xa0,
            PduType::GetNext => 0xa1,
            PduType::Response => 0xa2,
            PduType::Set => 0xa3,
            PduType::GetBulk => 0xa5,
            PduType::Inform => 0xa6,
            PduType::TrapV2 => 0xa7,
            PduType::Report => 0xa8,
        }
    }
    #[inline]
    pub(crate) fn from_tag(t: u8) -> Option<Self> {
        Some(match t {
            0xa0 => PduType::Get,
            0xa1 => PduType::GetNext,
            0xa2 => PduType::Response,
            0xa3 => PduType::Set,
            0xa5 => PduType::GetBulk,
            0xa6 => PduType::Inform,
            0xa7 => PduType::TrapV2,
            0xa8 => PduType::Report,
            _ => return None,
        })
    }
}

/// Error-status values of RFC 3416 that the engine reacts to.
pub mod error_status {
    pub const NO_ERROR: i64 = 0;
    pub const TOO_BIG: i64 = 1;
    pub const NO_SUCH_NAME: i64 = 2;
    pub const GEN_ERR: i64 = 5;
}

/// A PDU. For GETBULK, `error_status` holds non-repeaters and `error_index`
/// max-repetitions, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub kind: PduType,
    pub request_id: i32,
    pub error_status: i64,
    pub error_index: i64,
    pub varbinds: Vec<VarBind>,
}

impl Pdu {
    pub fn request(kind: PduType, request_id: i32, oids: &[Oid]) -> Pdu {
        Pdu {
            kind,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: oids.iter().cloned().map(VarBind::null).collect(),
        }
    }

    pub fn bulk(request_id: i32, non_repeaters: i64, max_repetitions: i64, oids: &[Oid]) -> Pdu {
        Pdu {
            kind: PduType::GetBulk,
            request_id,
            error_status: non_repeaters,
            error_index: max_repetitions,
            varbinds: oids.iter().cloned().map(VarBind::null).collect(),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut c = Vec::with_capacity(32 + self.varbinds.len() * 24);
        ber::push_signed(&mut c, ber::INTEGER, self.request_id as i64);
        ber::push_signed(&mut c, ber::INTEGER, self.error_status);
        ber::push_signed(&mut c, ber::INTEGER, self.error_index);
        let mut vbs = Vec::with_capacity(self.varbinds.len() * 24);
        for vb in &self.varbinds {
            let mut one = Vec::with_capacity(24);
            let mut oc = Vec::with_capacity(vb.oid.0.len() + 2);
            vb.oid.encode_content(&mut oc);
            ber::push_tlv(&mut one, ber::OBJECT_ID, &oc);
            vb.value.encode(&mut one);
            ber::push_tlv(&mut vbs, ber::SEQUENCE, &one);
        }
        ber::push_tlv(&mut c, ber::SEQUENCE, &vbs);
        ber::push_tlv(out, self.kind.tag(), &c);
    }

    pub fn decode(r: &mut Reader) -> DResult<Pdu> {
        let at = r.offset();
        let (tag, mut c) = r.read_tlv()?;
        let kind = match PduType::from_tag(tag) {
            Some(k) => k,
            None if tag == 0xa4 => {
                return Err(DecodeError {
                    offset: at,
                    what: "SNMPv1 trap PDUs are not handled".into(),
                })
            }
            None => {
                return Err(DecodeError {
                    offset: at,
                    what: format!("unknown PDU type 0x{tag:02x}"),
                })
            }
        };
        let rid = c.read_integer("request-id")?;
        let request_id = i32::try_from(rid).map_err(|_| DecodeError {
            offset: at,
            what: format!("request-id {rid} out of range"),
        })?;
        let error_status = c.read_integer("error-status")?;
        let error_index = c.read_integer("error-index")?;
        let mut list = c.expect(ber::SEQUENCE, "varbind list")?;
        let mut varbinds = Vec::new();
        while !list.is_empty() {
            let mut vb = list.expect(ber::SEQUENCE, "varbind")?;
            let o = vb.expect(ber::OBJECT_ID, "varbind name")?;
            let oid = Oid::decode_content(&o)?;
            let value = Value::decode(&mut vb)?;
            varbinds.push(VarBind { oid, value });
        }
        Ok(Pdu {
            kind,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Version {
    #[serde(rename = "v1")]
    V1,
    #[serde(rename = "v2c")]
    V2c,
    #[serde(rename = "v3")]
    V3,
}

impl Version {
    pub fn wire(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2c => "v2c",
            Version::V3 => "v3",
        }
    }
}
