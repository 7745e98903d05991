//! BER primitives for the subset of ASN.1 that SNMP uses. No IO.
//!
//! Decoding is strict about lengths (a length that runs past its container is an
//! error, never a panic) and lenient where real agents are sloppy: unsigned
//! application types with a missing leading zero byte are read as unsigned.

use std::fmt;

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OBJECT_ID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
pub const IP_ADDRESS: u8 = 0x40;
pub const COUNTER32: u8 = 0x41;
pub const GAUGE32: u8 = 0x42;
pub const TIMETICKS: u8 = 0x43;
pub const OPAQUE: u8 = 0x44;
pub const COUNTER64: u8 = 0x46;
pub const NO_SUCH_OBJECT: u8 = 0x80;
pub const NO_SUCH_INSTANCE: u8 = 0x81;
pub const END_OF_MIB_VIEW: u8 = 0x82;

/// What went wrong while decoding, and at which byte offset of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SNMP packet at byte {offset}: {what}")]
pub struct DecodeError {
    pub offset: usize,
    pub what: String,
}

pub type DResult<T> = Result<T, DecodeError>;

/// A cursor over a BER-encoded buffer. `base` is the offset of `buf[0]` in the
/// whole packet so that errors point into the packet as received.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reader@{}", self.base + self.pos)
    }
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn err<T>(&self, what: impl Into<String>) -> DResult<T> {
        Err(DecodeError {
            offset: self.offset(),
            what: what.into(),
        })
    }

    pub fn peek_tag(&self) -> DResult<u8> {
        match self.buf.get(self.pos) {
            Some(t) => Ok(*t),
            None => self.err("unexpected end of data, expected a tag"),
        }
    }

    /// Reads one TLV and returns its tag, a reader over its content, and the
    /// absolute offset of the content.
    pub fn read_tlv(&mut self) -> DResult<(u8, Reader<'a>)> {
        let tag = self.peek_tag()?;
        let tag_at = self.offset();
        self.pos += 1;
        let first = match self.buf.get(self.pos) {
            Some(b) => *b,
            None => return self.err("unexpected end of data, expected a length"),
        };
        self.pos += 1;
        let len = if first & 0x80 == 0 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return self.err(format!("unsupported length encoding 0x{first:02x}"));
            }
            let mut len = 0usize;
            for _ in 0..n {
                let b = match self.buf.get(self.pos) {
                    Some(b) => *b,
                    None => return self.err("length runs past the end of data"),
                };
                self.pos += 1;
                len = (len << 8) | b as usize;
            }
            len
        };
        let start = self.pos;
        if self.buf.len() - start < len {
            return Err(DecodeError {
                offset: tag_at,
                what: format!(
                    "element with tag 0x{tag:02x} claims {len} bytes, only {} left",
                    self.buf.len() - start
                ),
            });
        }
        self.pos += len;
        Ok((
            tag,
            Reader {
                buf: &self.buf[start..start + len],
                pos: 0,
                base: self.base + start,
            },
        ))
    }

    pub fn expect(&mut self, want: u8, what: &str) -> DResult<Reader<'a>> {
        let at = self.offset();
        let (tag, inner) = self.read_tlv()?;
        if tag != want {
            return Err(DecodeError {
                offset: at,
                what: format!("expected {what} (tag 0x{want:02x}), found tag 0x{tag:02x}"),
            });
        }
        Ok(inner)
    }

    pub fn bytes(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn read_integer(&mut self, what: &str) -> DResult<i64> {
        let r = self.expect(INTEGER, what)?;
        decode_signed(r.bytes()).ok_or_else(|| DecodeError {
            offset: r.offset(),
            what: format!("{what}: integer of {} bytes is out of range", r.buf.len()),
        })
    }

    pub fn read_octets(&mut self, what: &str) -> DResult<&'a [u8]> {
        Ok(self.expect(OCTET_STRING, what)?.bytes())
    }
}

pub fn decode_signed(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    let mut v: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
    for &x in b {
        v = (v << 8) | x as i64;
    }
    Some(v)
}

/// Unsigned application types: leading zero bytes are skipped, and a value with
/// the high bit set (a sloppy agent that forgot the leading zero) is read as
/// unsigned rather than negative.
pub fn decode_unsigned(b: &[u8], max_bytes: usize) -> Option<u64> {
    let mut s = b;
    while s.len() > 1 && s[0] == 0 {
        s = &s[1..];
    }
    if s.is_empty() || s.len() > max_bytes {
        return None;
    }
    let mut v: u64 = 0;
    for &x in s {
        v = (v << 8) | x as u64;
    }
    Some(v)
}

pub fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xffff {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
}

pub fn length_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len <= 0xff {
        2
    } else if len <= 0xffff {
        3
    } else {
        4
    }
}

pub fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_length(out, content.len());
    out.extend_from_slice(content);
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    push_tlv(&mut out, tag, content);
    out
}

pub fn push_signed(out: &mut Vec<u8>, tag: u8, v: i64) {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (a, b) = (bytes[start], bytes[start + 1]);
        if (a == 0 && b & 0x80 == 0) || (a == 0xff && b & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    push_tlv(out, tag, &bytes[start..]);
}

pub fn push_unsigned(out: &mut Vec<u8>, tag: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 && bytes[start] == 0 {
        start += 1;
    }
    if bytes[start] & 0x80 != 0 {
        let mut c = Vec::with_capacity(9);
        c.push(0);
        c.extend_from_slice(&bytes[start..]);
        push_tlv(out, tag, &c);
    } else {
        push_tlv(out, tag, &bytes[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_roundtrip_minimal() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i32::MAX as i64,
            i32::MIN as i64,
        ] {
            let mut out = Vec::new();
            push_signed(&mut out, INTEGER, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.read_integer("v").unwrap(), v, "{out:02x?}");
        }
        let mut out = Vec::new();
        push_signed(&mut out, INTEGER, 128);
        assert_eq!(out, [2, 2, 0, 128]);
    }

    #[test]
    fn unsigned_reads_sloppy_high_bit() {
        assert_eq!(
            decode_unsigned(&[0xff, 0xff, 0xff, 0xff], 4),
            Some(0xffff_ffff)
        );
        assert_eq!(
            decode_unsigned(&[0, 0xff, 0xff, 0xff, 0xff], 4),
            Some(0xffff_ffff)
        );
        assert_eq!(decode_unsigned(&[1, 0, 0, 0, 0], 4), None);
    }

    #[test]
    fn length_past_end_is_an_error_not_a_panic() {
        let data = [0x30, 0x10, 0x02, 0x01];
        let mut r = Reader::new(&data);
        let e = r.read_tlv().unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.what.contains("claims 16 bytes"), "{e}");
    }

    #[test]
    fn long_lengths() {
        let content = vec![7u8; 300];
        let t = tlv(OCTET_STRING, &content);
        assert_eq!(&t[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let mut r = Reader::new(&t);
        assert_eq!(r.read_octets("x").unwrap().len(), 300);
    }
}
