//! A cursor over one packet's payload whose every read is bounds-checked and
//! whose errors name the field, the packet kind and the byte offset.

use super::ProtocolError;

/// Reads fields off a payload, front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    packet: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `packet` names its kind in errors (`"row packet"`).
    pub fn new(buf: &'a [u8], packet: &'static str) -> Self {
        Self { buf, pos: 0, packet }
    }

    /// Byte offset of the next read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next byte, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// An error about `what` at the current offset.
    pub fn error(&self, what: &str, problem: &str) -> ProtocolError {
        ProtocolError::malformed(self.packet, format!("{what} at byte {}: {problem}", self.pos))
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtocolError> {
        if n > self.remaining() {
            return Err(self.error(
                what,
                &format!("needs {n} bytes, the {}-byte packet has {} left", self.buf.len(), self.remaining()),
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, ProtocolError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, ProtocolError> {
        Ok(self.uint(2, what)? as u16)
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, ProtocolError> {
        Ok(self.uint(4, what)? as u32)
    }

    /// A little-endian unsigned integer of `n` (≤ 8) bytes.
    pub fn uint(&mut self, n: usize, what: &str) -> Result<u64, ProtocolError> {
        let bytes = self.bytes(n, what)?;
        Ok(bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Bytes up to a NUL, which is consumed; an error when there is none.
    pub fn nul_terminated(&mut self, what: &str) -> Result<&'a [u8], ProtocolError> {
        match self.buf[self.pos..].iter().position(|&b| b == 0) {
            Some(len) => {
                let out = &self.buf[self.pos..self.pos + len];
                self.pos += len + 1;
                Ok(out)
            }
            None => Err(self.error(what, "no NUL terminator before the end of the packet")),
        }
    }

    /// Bytes up to a NUL or the end of the packet (some servers leave the
    /// last string of a handshake unterminated).
    pub fn nul_terminated_or_rest(&mut self) -> &'a [u8] {
        match self.buf[self.pos..].iter().position(|&b| b == 0) {
            Some(len) => {
                let out = &self.buf[self.pos..self.pos + len];
                self.pos += len + 1;
                out
            }
            None => self.rest(),
        }
    }

    /// A length-encoded integer; `None` for the NULL marker `0xFB`.
    pub fn lenenc_int_or_null(&mut self, what: &str) -> Result<Option<u64>, ProtocolError> {
        let at = self.pos;
        let first = self.u8(what)?;
        let value = match first {
            0x00..=0xFA => u64::from(first),
            0xFB => return Ok(None),
            0xFC => self.uint(2, what)?,
            0xFD => self.uint(3, what)?,
            0xFE => self.uint(8, what)?,
            0xFF => {
                self.pos = at;
                return Err(self.error(what, "0xFF is not a valid length-encoded integer"));
            }
        };
        Ok(Some(value))
    }

    /// A length-encoded integer where NULL is not allowed.
    pub fn lenenc_int(&mut self, what: &str) -> Result<u64, ProtocolError> {
        let at = self.pos;
        match self.lenenc_int_or_null(what)? {
            Some(v) => Ok(v),
            None => {
                self.pos = at;
                Err(self.error(what, "unexpected NULL (0xFB)"))
            }
        }
    }

    /// A length-encoded string; `None` for NULL.
    pub fn lenenc_bytes_or_null(&mut self, what: &str) -> Result<Option<&'a [u8]>, ProtocolError> {
        let at = self.pos;
        let Some(len) = self.lenenc_int_or_null(what)? else { return Ok(None) };
        if len > self.remaining() as u64 {
            let left = self.remaining();
            self.pos = at;
            return Err(self.error(what, &format!("length {len} but only {left} bytes follow")));
        }
        self.bytes(len as usize, what).map(Some)
    }

    /// A length-encoded string where NULL is not allowed.
    pub fn lenenc_bytes(&mut self, what: &str) -> Result<&'a [u8], ProtocolError> {
        let at = self.pos;
        match self.lenenc_bytes_or_null(what)? {
            Some(v) => Ok(v),
            None => {
                self.pos = at;
                Err(self.error(what, "unexpected NULL (0xFB)"))
            }
        }
    }

    /// An error unless the whole packet was read.
    pub fn finish(&self, what: &str) -> Result<(), ProtocolError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(what, &format!("{} unexpected trailing bytes", self.remaining())))
        }
    }
}

/// Append a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xFA => out.push(v as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Append a length-encoded string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_lenenc_int(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_ints_of_every_width() {
        let mut buf = Vec::new();
        for v in [0u64, 250, 251, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000, u64::MAX] {
            put_lenenc_int(&mut buf, v);
        }
        assert_eq!(&buf[..4], &[0x00, 0xFA, 0xFC, 0xFB]);
        let mut r = Reader::new(&buf, "test packet");
        for v in [0u64, 250, 251, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000, u64::MAX] {
            assert_eq!(r.lenenc_int("v").unwrap(), v);
        }
        assert!(r.is_empty());
    }

    #[test]
    fn null_and_invalid_markers() {
        let mut r = Reader::new(&[0xFB, 0xFF], "row packet");
        assert_eq!(r.lenenc_bytes_or_null("a").unwrap(), None);
        let e = r.lenenc_int("b").unwrap_err().to_string();
        assert_eq!(e, "malformed row packet: b at byte 1: 0xFF is not a valid length-encoded integer");
    }

    #[test]
    fn short_reads_name_the_field_and_offset() {
        let mut r = Reader::new(&[0x03, b'a', b'b'], "column definition packet");
        let e = r.lenenc_bytes("column name").unwrap_err().to_string();
        assert_eq!(e, "malformed column definition packet: column name at byte 0: length 3 but only 2 bytes follow");
        let mut r = Reader::new(&[1, 2, 3], "handshake packet");
        r.u8("x").unwrap();
        let e = r.u32("connection id").unwrap_err().to_string();
        assert_eq!(
            e,
            "malformed handshake packet: connection id at byte 1: needs 4 bytes, the 3-byte packet has 2 left"
        );
        let e = Reader::new(b"abc", "handshake packet").nul_terminated("server version").unwrap_err().to_string();
        assert!(e.contains("server version at byte 0: no NUL terminator"), "{e}");
    }

    #[test]
    fn truncated_wide_lenenc() {
        let e = Reader::new(&[0xFE, 1, 2], "row packet").lenenc_int("value").unwrap_err().to_string();
        assert!(e.contains("value at byte 1: needs 8 bytes"), "{e}");
    }
}
