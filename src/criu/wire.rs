//! The protocol-buffers wire format, as far as CRIU's RPC messages (`images/rpc.proto`,
//! proto2) need it: varints, length-delimited fields and embedded messages. Small enough to
//! write here rather than pull a protobuf code generator into the runtime binary.

use anyhow::{bail, Result};

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// An encoded message, built field by field in field-number order.
#[derive(Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u64) {
        self.varint(u64::from(field) << 3 | wire);
    }

    /// int32 (a negative value takes ten bytes, sign-extended, as proto2 says), uint32 and
    /// enums.
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, VARINT);
        self.varint(v as u64);
        self
    }

    pub fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.int(field, i64::from(v))
    }

    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    pub fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    pub fn message(&mut self, field: u32, m: Writer) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// One field of a decoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    /// fixed32 and fixed64: no field CRIU sends us has them; skipped, not refused.
    Fixed,
}

impl Value<'_> {
    pub fn int(self) -> Result<i64> {
        match self {
            Value::Int(v) => Ok(v as i64),
            other => bail!("expected a varint, found {other:?}"),
        }
    }

    pub fn string(self) -> Result<String> {
        match self {
            Value::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            other => bail!("expected a string, found {other:?}"),
        }
    }
}

/// The fields of `buf`, in order: (field number, value).
pub fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let field = u32::try_from(key >> 3).map_err(|_| anyhow::anyhow!("field number {key}"))?;
        let value = match key & 7 {
            VARINT => Value::Int(read_varint(&mut buf)?),
            LEN => {
                let n = usize::try_from(read_varint(&mut buf)?)?;
                if n > buf.len() {
                    bail!("field {field}: {n} bytes announced, {} left", buf.len());
                }
                let (v, rest) = buf.split_at(n);
                buf = rest;
                Value::Bytes(v)
            }
            w @ (FIXED64 | FIXED32) => {
                let n = if w == FIXED64 { 8 } else { 4 };
                if n > buf.len() {
                    bail!("field {field}: truncated");
                }
                buf = &buf[n..];
                Value::Fixed
            }
            w => bail!("field {field}: wire type {w} is not supported"),
        };
        out.push((field, value));
    }
    Ok(out)
}

fn read_varint(buf: &mut &[u8]) -> Result<u64> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(v);
        }
    }
    bail!("a truncated or overlong varint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut inner = Writer::default();
        inner.string(1, "key").int(2, 7);
        let mut w = Writer::default();
        w.int(1, 300).bool(3, true).int(4, -1).message(5, inner);
        let bytes = w.into_bytes();
        // 300 = 0xac 0x02; -1 is ten bytes.
        assert_eq!(&bytes[..3], &[0x08, 0xac, 0x02]);
        let f = fields(&bytes).unwrap();
        assert_eq!(f[0], (1, Value::Int(300)));
        assert_eq!(f[1], (3, Value::Int(1)));
        assert_eq!(f[2].1.int().unwrap() as i32, -1);
        let Value::Bytes(m) = f[3].1 else { panic!() };
        let g = fields(m).unwrap();
        assert_eq!(g[0].1.string().unwrap(), "key");
        assert_eq!(g[1], (2, Value::Int(7)));
    }

    #[test]
    fn truncation_is_an_error() {
        assert!(fields(&[0x0a, 0x05, b'a']).is_err());
        assert!(fields(&[0x08, 0x80]).is_err());
        assert!(fields(&[0x0b]).is_err(), "wire type 3 (groups)");
    }
}
