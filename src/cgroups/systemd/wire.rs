//! The D-Bus wire format (the "Message Protocol" part of the D-Bus specification), as much of
//! it as talking to systemd's manager takes: little-endian messages, the basic types, arrays,
//! structs, dict entries and variants. No unix fds.
//!
//! Every value is aligned to its natural boundary counted from the start of the message,
//! which is why encoding and decoding carry the absolute offset along.

use anyhow::{bail, ensure, Context, Result};

/// A D-Bus value. Arrays carry their element signature so that an empty one can still be
/// encoded (its signature is part of the message).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    /// A dict entry `{kv}`, only inside an array.
    Entry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    /// This value's type signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                format!(
                    "({})",
                    fields.iter().map(Value::signature).collect::<String>()
                )
            }
            Value::Entry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }

    /// The value inside a variant (or the value itself).
    pub fn unvariant(&self) -> &Value {
        match self {
            Value::Variant(v) => v.unvariant(),
            other => other,
        }
    }
}

/// Alignment of the first type in `sig`.
fn alignment(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

/// Appends encoded values to a buffer whose first byte is at message offset 0.
#[derive(Debug, Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn value(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I32(n) => self.u32(*n as u32),
            Value::U32(n) => self.u32(*n),
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => {
                ensure!(!s.contains('\0'), "D-Bus strings cannot hold NUL: {s:?}");
                self.string(s)
            }
            Value::Sig(s) => {
                ensure!(s.len() < 256, "D-Bus signature too long");
                self.signature(s)
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(alignment(
                    *elem.as_bytes().first().context("empty array signature")?,
                ));
                let start = self.buf.len();
                for item in items {
                    ensure!(
                        item.signature() == *elem,
                        "array of {elem} holds a {}",
                        item.signature()
                    );
                    self.value(item)?;
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f)?;
                }
            }
            Value::Entry(k, val) => {
                self.pad(8);
                self.value(k)?;
                self.value(val)?;
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.value(inner)?;
            }
        }
        Ok(())
    }
}

/// Reads values from a message; `pos` is the offset in the message.
#[derive(Debug)]
pub struct Decoder<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Decoder<'a> {
        Decoder { buf, pos }
    }

    pub fn align(&mut self, a: usize) -> Result<()> {
        let next = self.pos.div_ceil(a) * a;
        ensure!(next <= self.buf.len(), "D-Bus message truncated");
        self.pos = next;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).context("D-Bus length overflow")?;
        ensure!(end <= self.buf.len(), "D-Bus message truncated");
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len)?;
        ensure!(self.take(1)? == [0], "D-Bus string without its NUL");
        String::from_utf8(bytes.to_vec()).context("D-Bus string is not UTF-8")
    }

    /// Decodes every value of signature `sig`, in order.
    pub fn values(&mut self, sig: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut rest = sig.as_bytes();
        while !rest.is_empty() {
            let one = single(rest)?;
            out.push(self.value(std::str::from_utf8(&rest[..one])?)?);
            rest = &rest[one..];
        }
        Ok(out)
    }

    /// Decodes one value of the single complete type `sig`.
    pub fn value(&mut self, sig: &str) -> Result<Value> {
        let b = sig.as_bytes();
        Ok(match b[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' => Value::U32(self.u32()?),
            b't' | b'x' => {
                self.align(8)?;
                Value::U64(u64::from_le_bytes(self.take(8)?.try_into()?))
            }
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if b[0] == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Sig(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                ensure!(
                    single(inner.as_bytes())? == inner.len(),
                    "bad variant signature"
                );
                Value::Variant(Box::new(self.value(&inner)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(alignment(elem.as_bytes()[0]))?;
                let end = self.pos.checked_add(len).context("D-Bus length overflow")?;
                ensure!(end <= self.buf.len(), "D-Bus array runs past the message");
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                ensure!(self.pos == end, "D-Bus array length mismatch");
                Value::Array(elem.to_string(), items)
            }
            b'(' => {
                self.align(8)?;
                Value::Struct(self.values(&sig[1..sig.len() - 1])?)
            }
            b'{' => {
                self.align(8)?;
                let mut kv = self.values(&sig[1..sig.len() - 1])?;
                ensure!(kv.len() == 2, "a dict entry has two fields");
                let v = kv.pop().expect("two");
                let k = kv.pop().expect("two");
                Value::Entry(Box::new(k), Box::new(v))
            }
            other => bail!("unsupported D-Bus type {:?}", other as char),
        })
    }
}

/// Length of the first complete type at the start of `sig`.
pub fn single(sig: &[u8]) -> Result<usize> {
    match sig.first() {
        None => bail!("empty D-Bus signature"),
        Some(b'a') => Ok(1 + single(&sig[1..])?),
        Some(&open @ (b'(' | b'{')) => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut i = 1;
            while sig.get(i).with_context(|| {
                format!(
                    "unterminated D-Bus signature {:?}: no closing {:?}",
                    String::from_utf8_lossy(sig),
                    close as char
                )
            })? != &close
            {
                i += single(&sig[i..])?;
            }
            Ok(i + 1)
        }
        Some(_) => Ok(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let mut e = Encoder::default();
        // An odd start checks that alignment counts from the message start.
        e.buf.push(0xff);
        e.value(&v).unwrap();
        let mut d = Decoder::new(&e.buf, 1);
        assert_eq!(d.value(&v.signature()).unwrap(), v);
        assert_eq!(d.pos, e.buf.len());
    }

    #[test]
    fn values_survive_a_round_trip() {
        roundtrip(Value::U64(1 << 40));
        roundtrip(Value::str("system.slice"));
        roundtrip(Value::Array(
            "y".into(),
            vec![Value::Byte(3), Value::Byte(5)],
        ));
        roundtrip(Value::Array("(sv)".into(), vec![]));
        roundtrip(Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::str("Delegate"),
                    Value::variant(Value::Bool(true)),
                ]),
                Value::Struct(vec![
                    Value::str("PIDs"),
                    Value::variant(Value::Array("u".into(), vec![Value::U32(42)])),
                ]),
                Value::Struct(vec![
                    Value::str("IOReadBandwidthMax"),
                    Value::variant(Value::Array(
                        "(st)".into(),
                        vec![Value::Struct(vec![
                            Value::str("/dev/vda"),
                            Value::U64(1024),
                        ])],
                    )),
                ]),
            ],
        ));
        roundtrip(Value::Array(
            "{sv}".into(),
            vec![Value::Entry(
                Box::new(Value::str("k")),
                Box::new(Value::variant(Value::Path("/o".into()))),
            )],
        ));
    }

    /// Bytes as the specification's examples and dbus-daemon lay them out.
    #[test]
    fn layout_matches_the_specification() {
        let mut e = Encoder::default();
        e.value(&Value::str("ab")).unwrap();
        e.value(&Value::U64(7)).unwrap();
        assert_eq!(
            e.buf,
            [2, 0, 0, 0, b'a', b'b', 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        // An empty array of 8-aligned elements still pads to the element boundary, and the
        // padding is not counted in the length.
        let mut e = Encoder::default();
        e.value(&Value::Array("t".into(), vec![])).unwrap();
        assert_eq!(e.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn signatures_split_into_complete_types() {
        assert_eq!(single(b"a(sv)s").unwrap(), 5);
        assert_eq!(single(b"a{sv}").unwrap(), 5);
        assert_eq!(single(b"(ssa(sv))").unwrap(), 9);
        let e = single(b"(ss").unwrap_err().to_string();
        assert!(
            e.contains("unterminated D-Bus signature \"(ss\": no closing"),
            "{e}"
        );
        let mut d = Decoder::new(&[1, 0, 0, 0, 9, 0, 0, 0], 0);
        assert_eq!(d.values("uu").unwrap(), [Value::U32(1), Value::U32(9)]);
    }

    #[test]
    fn truncated_or_hostile_input_is_an_error() {
        let mut d = Decoder::new(&[200, 0, 0, 0, b'x'], 0);
        let e = d.value("s").unwrap_err().to_string();
        assert!(e.contains("D-Bus message truncated"), "{e}");
        let mut d = Decoder::new(&[0xff, 0xff, 0xff, 0xff], 0);
        let e = d.value("ay").unwrap_err().to_string();
        assert!(e.contains("D-Bus array runs past the message"), "{e}");
        let mut d = Decoder::new(&[1, b'q', 0], 0);
        let e = d.value("v").unwrap_err().to_string();
        assert!(e.contains("unsupported D-Bus type 'q'"), "{e}");
    }
}
