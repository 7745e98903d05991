//! Message framing: v1/v2c community messages and v3 messages with their
//! USM parameters and scoped PDUs.

use super::{Pdu, Version};
use crate::snmp::ber::{self, DResult, Reader};

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
