//! Byte-level helpers shared by the chunk, WAL and block formats: Go-style
//! varints (so the chunk layout matches Prometheus' `binary.PutVarint`) and a
//! bounds-checked decoder, because every byte we read back may be damaged.

/// Why a byte buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of data")]
    UnexpectedEof,
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    #[error("string is not valid utf-8")]
    InvalidUtf8,
    #[error("{0}")]
    Invalid(&'static str),
}

/// Appends `x` as an unsigned LEB128 varint (Go's `binary.PutUvarint`).
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push((x as u8) | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// Appends `x` zigzag-encoded (Go's `binary.PutVarint`).
pub(crate) fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, ((x << 1) ^ (x >> 63)) as u64);
}

/// Appends a length-prefixed UTF-8 string.
pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Decodes an unsigned varint from the front of `bytes`, returning the value
/// and how many bytes it used.
pub(crate) fn uvarint(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut x: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        // The tenth byte may only carry the top bit of a u64.
        if i == 9 && b > 1 {
            return Err(DecodeError::VarintOverflow);
        }
        x |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok((x, i + 1));
        }
    }
    if bytes.len() >= 10 { Err(DecodeError::VarintOverflow) } else { Err(DecodeError::UnexpectedEof) }
}

pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// A cursor over untrusted bytes; every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEof);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u64_be(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let (x, n) = uvarint(&self.buf[self.pos..])?;
        self.pos += n;
        Ok(x)
    }

    pub(crate) fn varint(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.uvarint()?))
    }

    /// A varint used as a count or length; rejects values larger than the
    /// remaining input so a damaged length cannot trigger a huge allocation.
    pub(crate) fn len(&mut self, min_bytes_each: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        let max = self.remaining() / min_bytes_each.max(1);
        if n > max as u64 {
            return Err(DecodeError::Invalid("length exceeds the remaining data"));
        }
        Ok(n as usize)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len(1)?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError::InvalidUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uvarint_matches_go_encoding() {
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        let mut b = Vec::new();
        put_varint(&mut b, -1);
        assert_eq!(b, [0x01]);
    }

    #[test]
    fn damaged_varints_are_errors() {
        assert_eq!(uvarint(&[0x80, 0x80]), Err(DecodeError::UnexpectedEof));
        assert_eq!(uvarint(&[0xff; 11]), Err(DecodeError::VarintOverflow));
        assert_eq!(Decoder::new(&[0x05, b'a']).str(), Err(DecodeError::Invalid("length exceeds the remaining data")));
    }

    proptest! {
        #[test]
        fn varints_round_trip(x in any::<i64>(), u in any::<u64>()) {
            let mut b = Vec::new();
            put_varint(&mut b, x);
            put_uvarint(&mut b, u);
            let mut d = Decoder::new(&b);
            prop_assert_eq!(d.varint().unwrap(), x);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert!(d.is_empty());
        }
    }
}
