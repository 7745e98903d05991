//! Values and variable bindings.

use super::Oid;
use crate::snmp::ber::{self, DResult, DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    Null,
    ObjectId(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    /// True for the v2 exception values that say "nothing here".
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    /// A numeric reading of the value, for counters and gauges.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Integer(i) if *i >= 0 => Some(*i as u64),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(*v as u64),
            Value::Counter64(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(*v as i64),
            Value::Counter64(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::OctetString(b) | Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Integer(i) => ber::push_signed(out, ber::INTEGER, *i),
            Value::OctetString(b) => ber::push_tlv(out, ber::OCTET_STRING, b),
            Value::Null => ber::push_tlv(out, ber::NULL, &[]),
            Value::ObjectId(o) => {
                let mut c = Vec::with_capacity(o.0.len() + 2);
                o.encode_content(&mut c);
                ber::push_tlv(out, ber::OBJECT_ID, &c);
            }
            Value::IpAddress(a) => ber::push_tlv(out, ber::IP_ADDRESS, a),
            Value::Counter32(v) => ber::push_unsigned(out, ber::COUNTER32, *v as u64),
            Value::Gauge32(v) => ber::push_unsigned(out, ber::GAUGE32, *v as u64),
            Value::TimeTicks(v) => ber::push_unsigned(out, ber::TIMETICKS, *v as u64),
            Value::Opaque(b) => ber::push_tlv(out, ber::OPAQUE, b),
            Value::Counter64(v) => ber::push_unsigned(out, ber::COUNTER64, *v),
            Value::NoSuchObject => ber::push_tlv(out, ber::NO_SUCH_OBJECT, &[]),
            Value::NoSuchInstance => ber::push_tlv(out, ber::NO_SUCH_INSTANCE, &[]),
            Value::EndOfMibView => ber::push_tlv(out, ber::END_OF_MIB_VIEW, &[]),
        }
    }

    #[inline]
    pub(crate) fn decode(r: &mut Reader) -> DResult<Value> {
        let at = r.offset();
        let (tag, c) = r.read_tlv()?;
        let b = c.bytes();
        let bad = |what: &str| DecodeError {
            offset: at,
            what: what.to_string(),
        };
        Ok(match tag {
            ber::INTEGER => Value::Integer(
                ber::decode_signed(b).ok_or_else(|| bad("integer value out of range"))?,
            ),
            ber::OCTET_STRING => Value::OctetString(b.to_vec()),
            ber::NULL => Value::Null,
            ber::OBJECT_ID => Value::ObjectId(Oid::decode_content(&c)?),
            ber::IP_ADDRESS => {
                Value::IpAddress(b.try_into().map_err(|_| bad("IpAddress is not 4 bytes"))?)
            }
            ber::COUNTER32 | ber::GAUGE32 | ber::TIMETICKS => {
                let v = ber::decode_unsigned(b, 4)
                    .ok_or_else(|| bad("32-bit unsigned value out of range"))?
                    as u32;
                match tag {
                    ber::COUNTER32 => Value::Counter32(v),
                    ber::GAUGE32 => Value::Gauge32(v),
                    _ => Value::TimeTicks(v),
                }
            }
            ber::OPAQUE => Value::Opaque(b.to_vec()),
            ber::COUNTER64 => Value::Counter64(
                ber::decode_unsigned(b, 8).ok_or_else(|| bad("Counter64 value out of range"))?,
            ),
            ber::NO_SUCH_OBJECT => Value::NoSuchObject,
            ber::NO_SUCH_INSTANCE => Value::NoSuchInstance,
            ber::END_OF_MIB_VIEW => Value::EndOfMibView,
            other => return Err(bad(&format!("unknown value type 0x{other:02x}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarBind {
    pub oid: Oid,
    pub value: Value,
}

impl VarBind {
    pub fn new(oid: Oid, value: Value) -> Self {
        VarBind { oid, value }
    }
    pub fn null(oid: Oid) -> Self {
        VarBind {
            oid,
            value: Value::Null,
        }
    }
}
