//! SNMP values, PDUs and messages (v1, v2c, v3 framing) with their BER
//! encoding. No IO: bytes in, structures out, and back.
//!
//! `oid`, `value`, `pdu` and `frame` hold the types; this module decodes any
//! message and peeks at request ids. The per-varbind encoders and decoders
//! are `#[inline]`: they sit in other modules than their callers, and every
//! PDU runs them (measured in BENCHMARKS.md).

mod frame;
mod oid;
mod pdu;
mod value;

pub use frame::{
    CommunityMessage, DecodedV3, Message, ScopedData, ScopedPdu, UsmParams, V3Message, FLAG_AUTH,
    FLAG_PRIV, FLAG_REPORTABLE,
};
pub use oid::{oid, Oid, OidParseError};
pub use pdu::{error_status, Pdu, PduType, Version};
pub use value::{Value, VarBind};

use super::ber::{self, DResult, DecodeError, Reader};

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
