//! SNMP values, PDUs and messages (v1, v2c, v3 framing) with their BER
//! encoding. No IO: bytes in, structures out, and back.

use super::ber::{self, DResult, DecodeError, Reader};
use std::fmt;
use std::str::FromStr;

/// An object identifier. Ordering is lexicographic over the arcs, which is
/// SNMP's ordering for GETNEXT and walks.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    pub fn arcs(&self) -> &[u32] {
        &self.0
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    pub fn child(&self, arc: u32) -> Oid {
        let mut v = self.0.clone();
        v.push(arc);
        Oid(v)
    }

    /// The arcs after `prefix`, if this OID lies under it.
    pub fn suffix(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }

    fn encode_content(&self, out: &mut Vec<u8>) {
        let a = &self.0;
        let (first, rest) = match a.len() {
            0 => (0u64, &a[..]),
            1 => (a[0] as u64 * 40, &a[1..]),
            _ => (a[0] as u64 * 40 + a[1] as u64, &a[2..]),
        };
        push_base128(out, first);
        for &x in rest {
            push_base128(out, x as u64);
        }
    }

    fn decode_content(r: &Reader) -> DResult<Oid> {
        let b = r.bytes();
        if b.is_empty() {
            return r.err("empty object identifier");
        }
        let mut arcs = Vec::with_capacity(b.len() + 1);
        let mut acc: u64 = 0;
        let mut in_arc = false;
        for &x in b {
            acc = (acc << 7) | (x & 0x7f) as u64;
            in_arc = true;
            if acc > u32::MAX as u64 * 40 + 39 {
                return r.err("object identifier arc exceeds 32 bits");
            }
            if x & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (acc / 40).min(2);
                    arcs.push(first as u32);
                    arcs.push((acc - first * 40) as u32);
                } else {
                    if acc > u32::MAX as u64 {
                        return r.err("object identifier arc exceeds 32 bits");
                    }
                    arcs.push(acc as u32);
                }
                acc = 0;
                in_arc = false;
            }
        }
        if in_arc {
            return r.err("object identifier ends inside an arc");
        }
        Ok(Oid(arcs))
    }
}

fn push_base128(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    let mut x = v;
    loop {
        tmp[n] = (x & 0x7f) as u8;
        n += 1;
        x >>= 7;
        if x == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(tmp[i] | if i > 0 { 0x80 } else { 0 });
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an object identifier: {0:?} (expected dotted numbers such as 1.3.6.1.2.1.1.1.0)")]
pub struct OidParseError(pub String);

impl FromStr for Oid {
    type Err = OidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('.');
        if t.is_empty() {
            return Err(OidParseError(s.to_string()));
        }
        t.split('.')
            .map(|p| p.parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map(Oid)
            .map_err(|_| OidParseError(s.to_string()))
    }
}

impl serde::Serialize for Oid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Oid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A shorthand for OID literals in code and tests.
pub fn oid(s: &str) -> Oid {
    s.parse().expect("valid OID literal")
}

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

    fn encode(&self, out: &mut Vec<u8>) {
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

    fn decode(r: &mut Reader) -> DResult<Value> {
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
    fn tag(self) -> u8 {
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
    fn from_tag(t: u8) -> Option<Self> {
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

/// A v1 or v2c message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityMessage {
    pub version: Version,
    pub community: Vec<u8>,
    pub pdu: Pdu,
}

impl CommunityMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut c = Vec::with_capacity(64 + self.pdu.varbinds.len() * 24);
        ber::push_signed(&mut c, ber::INTEGER, self.version.wire());
        ber::push_tlv(&mut c, ber::OCTET_STRING, &self.community);
        self.pdu.encode(&mut c);
        ber::tlv(ber::SEQUENCE, &c)
    }
}

/// The USM security parameters of a v3 message (RFC 3414 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsmParams {
    pub engine_id: Vec<u8>,
    pub engine_boots: i64,
    pub engine_time: i64,
    pub user_name: Vec<u8>,
    pub auth_params: Vec<u8>,
    pub priv_params: Vec<u8>,
}

pub const FLAG_AUTH: u8 = 1;
pub const FLAG_PRIV: u8 = 2;
pub const FLAG_REPORTABLE: u8 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPdu {
    pub context_engine_id: Vec<u8>,
    pub context_name: Vec<u8>,
    pub pdu: Pdu,
}

impl ScopedPdu {
    pub fn encode(&self) -> Vec<u8> {
        let mut c = Vec::with_capacity(64 + self.pdu.varbinds.len() * 24);
        ber::push_tlv(&mut c, ber::OCTET_STRING, &self.context_engine_id);
        ber::push_tlv(&mut c, ber::OCTET_STRING, &self.context_name);
        self.pdu.encode(&mut c);
        ber::tlv(ber::SEQUENCE, &c)
    }

    pub fn decode(bytes: &[u8]) -> DResult<ScopedPdu> {
        let mut r = Reader::new(bytes);
        let mut s = r.expect(ber::SEQUENCE, "scoped PDU")?;
        let context_engine_id = s.read_octets("contextEngineID")?.to_vec();
        let context_name = s.read_octets("contextName")?.to_vec();
        let pdu = Pdu::decode(&mut s)?;
        Ok(ScopedPdu {
            context_engine_id,
            context_name,
            pdu,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopedData {
    Plain(ScopedPdu),
    Encrypted(Vec<u8>),
}

/// A v3 message as framed on the wire, before or after USM processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Message {
    pub msg_id: i32,
    pub max_size: i64,
    pub flags: u8,
    pub usm: UsmParams,
    pub data: ScopedData,
}

impl V3Message {
    /// Encodes the message. Returns the bytes and the offset of the
    /// authentication parameters' content, which USM overwrites with the MAC.
    pub fn encode(&self) -> (Vec<u8>, usize) {
        let mut header = Vec::with_capacity(24);
        ber::push_signed(&mut header, ber::INTEGER, self.msg_id as i64);
        ber::push_signed(&mut header, ber::INTEGER, self.max_size);
        ber::push_tlv(&mut header, ber::OCTET_STRING, &[self.flags]);
        ber::push_signed(&mut header, ber::INTEGER, 3);

        let u = &self.usm;
        let mut usm = Vec::with_capacity(96);
        ber::push_tlv(&mut usm, ber::OCTET_STRING, &u.engine_id);
        ber::push_signed(&mut usm, ber::INTEGER, u.engine_boots);
        ber::push_signed(&mut usm, ber::INTEGER, u.engine_time);
        ber::push_tlv(&mut usm, ber::OCTET_STRING, &u.user_name);
        let auth_at_in_usm = usm.len() + 1 + ber::length_len(u.auth_params.len());
        ber::push_tlv(&mut usm, ber::OCTET_STRING, &u.auth_params);
        ber::push_tlv(&mut usm, ber::OCTET_STRING, &u.priv_params);
        let usm_seq = ber::tlv(ber::SEQUENCE, &usm);
        let usm_seq_header = usm_seq.len() - usm.len();

        let mut body = Vec::with_capacity(256);
        ber::push_signed(&mut body, ber::INTEGER, 3);
        ber::push_tlv(&mut body, ber::SEQUENCE, &header);
        let usm_octets_at = body.len() + 1 + ber::length_len(usm_seq.len());
        ber::push_tlv(&mut body, ber::OCTET_STRING, &usm_seq);
        match &self.data {
            ScopedData::Plain(s) => body.extend_from_slice(&s.encode()),
            ScopedData::Encrypted(e) => ber::push_tlv(&mut body, ber::OCTET_STRING, e),
        }
        let outer_header = 1 + ber::length_len(body.len());
        let out = ber::tlv(ber::SEQUENCE, &body);
        (
            out,
            outer_header + usm_octets_at + usm_seq_header + auth_at_in_usm,
        )
    }
}

/// A decoded v3 message plus where its authentication parameters sit in the
/// packet, so that USM can verify the MAC over the packet as received.
#[derive(Debug, Clone)]
pub struct DecodedV3 {
    pub msg: V3Message,
    pub auth_params_offset: usize,
}

#[derive(Debug, Clone)]
pub enum Message {
    Community(CommunityMessage),
    V3(DecodedV3),
}

/// The request id (v1/v2c) or msgID (v3) of a message, read without decoding
/// the varbinds: what a receiver needs to route a response to its waiter.
pub fn peek_id(bytes: &[u8]) -> Option<i32> {
    let mut r = Reader::new(bytes);
    let mut m = r.expect(ber::SEQUENCE, "message").ok()?;
    match m.read_integer("version").ok()? {
        0 | 1 => {
            m.read_octets("community").ok()?;
            let (_, mut pdu) = m.read_tlv().ok()?;
            i32::try_from(pdu.read_integer("request-id").ok()?).ok()
        }
        3 => {
            let mut h = m.expect(ber::SEQUENCE, "msgGlobalData").ok()?;
            i32::try_from(h.read_integer("msgID").ok()?).ok()
        }
        _ => None,
    }
}

/// Decodes any SNMP message. v3 scoped data stays encrypted if it was; USM
/// decides what to do with it.
pub fn decode_message(bytes: &[u8]) -> DResult<Message> {
    let mut r = Reader::new(bytes);
    let mut m = r.expect(ber::SEQUENCE, "SNMP message")?;
    let at = m.offset();
    let version = m.read_integer("version")?;
    match version {
        0 | 1 => {
            let community = m.read_octets("community")?.to_vec();
            let pdu = Pdu::decode(&mut m)?;
            Ok(Message::Community(CommunityMessage {
                version: if version == 0 {
                    Version::V1
                } else {
                    Version::V2c
                },
                community,
                pdu,
            }))
        }
        3 => {
            let mut h = m.expect(ber::SEQUENCE, "msgGlobalData")?;
            let mid = h.read_integer("msgID")?;
            let msg_id = i32::try_from(mid).map_err(|_| DecodeError {
                offset: at,
                what: format!("msgID {mid} out of range"),
            })?;
            let max_size = h.read_integer("msgMaxSize")?;
            let flags_b = h.read_octets("msgFlags")?;
            let flags = match flags_b {
                [f] => *f,
                _ => return h.err("msgFlags is not one byte"),
            };
            let model = h.read_integer("msgSecurityModel")?;
            if model != 3 {
                return h.err(format!("security model {model} is not USM (3)"));
            }
            let mut sp = m.expect(ber::OCTET_STRING, "msgSecurityParameters")?;
            let mut u = sp.expect(ber::SEQUENCE, "USM parameters")?;
            let engine_id = u.read_octets("msgAuthoritativeEngineID")?.to_vec();
            let engine_boots = u.read_integer("msgAuthoritativeEngineBoots")?;
            let engine_time = u.read_integer("msgAuthoritativeEngineTime")?;
            let user_name = u.read_octets("msgUserName")?.to_vec();
            let ap = u.expect(ber::OCTET_STRING, "msgAuthenticationParameters")?;
            let auth_params_offset = ap.offset();
            let auth_params = ap.bytes().to_vec();
            let priv_params = u.read_octets("msgPrivacyParameters")?.to_vec();
            let data = if flags & FLAG_PRIV != 0 {
                ScopedData::Encrypted(m.read_octets("encryptedPDU")?.to_vec())
            } else {
                let mut s = m.expect(ber::SEQUENCE, "scoped PDU")?;
                let context_engine_id = s.read_octets("contextEngineID")?.to_vec();
                let context_name = s.read_octets("contextName")?.to_vec();
                let pdu = Pdu::decode(&mut s)?;
                ScopedData::Plain(ScopedPdu {
                    context_engine_id,
                    context_name,
                    pdu,
                })
            };
            Ok(Message::V3(DecodedV3 {
                msg: V3Message {
                    msg_id,
                    max_size,
                    flags,
                    usm: UsmParams {
                        engine_id,
                        engine_boots,
                        engine_time,
                        user_name,
                        auth_params,
                        priv_params,
                    },
                    data,
                },
                auth_params_offset,
            }))
        }
        v => Err(DecodeError {
            offset: at,
            what: format!("unsupported SNMP version number {v}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_roundtrip_large_arcs() {
        let o = oid("1.3.6.1.4.1.1602.1.11.1.3.1.4.4294967295");
        let mut c = Vec::new();
        o.encode_content(&mut c);
        let t = ber::tlv(ber::OBJECT_ID, &c);
        let mut r = Reader::new(&t);
        let inner = r.expect(ber::OBJECT_ID, "oid").unwrap();
        assert_eq!(Oid::decode_content(&inner).unwrap(), o);
    }

    #[test]
    fn oid_order_is_snmp_order() {
        assert!(oid("1.3.6.1.2") < oid("1.3.6.1.2.0"));
        assert!(oid("1.3.6.1.2.9") < oid("1.3.6.1.2.10"));
    }

    /// A GET for sysDescr.0 as net-snmp's snmpget sends it (captured bytes).
    #[test]
    fn decodes_net_snmp_v2c_get() {
        let pkt: [u8; 39] = [
            0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0,
            0x18, 0x02, 0x04, 0x12, 0x34, 0x56, 0x78, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30,
            0x0a, 0x30, 0x08, 0x06, 0x04, 0x2b, 0x06, 0x01, 0x02, 0x05, 0x00,
        ];
        let Message::Community(m) = decode_message(&pkt).unwrap() else {
            panic!("not community")
        };
        assert_eq!(m.version, Version::V2c);
        assert_eq!(m.community, b"public");
        assert_eq!(m.pdu.request_id, 0x12345678);
        assert_eq!(m.pdu.varbinds[0].oid, oid("1.3.6.1.2"));
        assert_eq!(m.encode(), pkt);
    }

    #[test]
    fn every_value_type_roundtrips() {
        let values = vec![
            Value::Integer(-5),
            Value::OctetString(b"Canon iR-ADV".to_vec()),
            Value::Null,
            Value::ObjectId(oid("1.3.6.1.4.1.1602.4.7")),
            Value::IpAddress([192, 0, 2, 1]),
            Value::Counter32(u32::MAX),
            Value::Gauge32(7),
            Value::TimeTicks(123456),
            Value::Opaque(vec![1, 2]),
            Value::Counter64(u64::MAX),
            Value::NoSuchObject,
            Value::NoSuchInstance,
            Value::EndOfMibView,
        ];
        let pdu = Pdu {
            kind: PduType::Response,
            request_id: -7,
            error_status: 0,
            error_index: 0,
            varbinds: values
                .iter()
                .enumerate()
                .map(|(i, v)| VarBind::new(oid("1.3.6.1").child(i as u32), v.clone()))
                .collect(),
        };
        let m = CommunityMessage {
            version: Version::V1,
            community: b"c".to_vec(),
            pdu,
        };
        let Message::Community(back) = decode_message(&m.encode()).unwrap() else {
            panic!()
        };
        assert_eq!(back, m);
    }

    #[test]
    fn peek_id_matches_full_decode() {
        let m = CommunityMessage {
            version: Version::V2c,
            community: b"public".to_vec(),
            pdu: Pdu::request(PduType::Get, 0x1234_5678, &[oid("1.3.6.1.2.1.1.1.0")]),
        };
        assert_eq!(peek_id(&m.encode()), Some(0x1234_5678));
        assert_eq!(peek_id(&[0x30, 0x03, 0x02, 0x01, 0x07]), None);
        assert_eq!(peek_id(&[]), None);
    }

    #[test]
    fn truncated_packets_fail_cleanly() {
        let m = CommunityMessage {
            version: Version::V2c,
            community: b"public".to_vec(),
            pdu: Pdu::request(PduType::Get, 1, &[oid("1.3.6.1.2.1.1.1.0")]),
        };
        let bytes = m.encode();
        for n in 0..bytes.len() {
            assert!(decode_message(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn v3_encode_reports_auth_offset() {
        let m = V3Message {
            msg_id: 42,
            max_size: 65507,
            flags: FLAG_AUTH | FLAG_REPORTABLE,
            usm: UsmParams {
                engine_id: vec![0x80, 0, 0, 0, 1],
                engine_boots: 1,
                engine_time: 100,
                user_name: b"meter".to_vec(),
                auth_params: vec![0xaa; 12],
                priv_params: vec![],
            },
            data: ScopedData::Plain(ScopedPdu {
                context_engine_id: vec![0x80, 0, 0, 0, 1],
                context_name: vec![],
                pdu: Pdu::request(PduType::Get, 42, &[oid("1.3.6.1.2.1.1.1.0")]),
            }),
        };
        let (bytes, at) = m.encode();
        assert_eq!(&bytes[at..at + 12], &[0xaa; 12]);
        let Message::V3(d) = decode_message(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(d.auth_params_offset, at);
        assert_eq!(d.msg, m);
    }
}
