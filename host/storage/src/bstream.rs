//! MSB-first bit streams, as in Prometheus' `tsdb/chunkenc/bstream.go`, so our
//! XOR chunks have the same bit layout.

/// Appends bits to a byte vector, most significant bit first.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Unused low bits in the last byte.
    free: u8,
}

impl BitWriter {
    /// Continues after `prefix`, which is treated as fully used bytes.
    pub(crate) fn with_prefix(prefix: Vec<u8>) -> Self {
        Self { bytes: prefix, free: 0 }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    pub(crate) fn write_byte(&mut self, b: u8) {
        self.write_bits(u64::from(b), 8);
    }

    /// Writes the low `n` bits of `v` (n ≤ 64).
    pub(crate) fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let k = self.free.min(n);
            let chunk = (v >> (n - k)) & ((1u64 << k) - 1);
            if let Some(last) = self.bytes.last_mut() {
                *last |= (chunk as u8) << (self.free - k);
            }
            self.free -= k;
            n -= k;
        }
    }
}

/// Reads bits written by [`BitWriter`]; `None` means the data ran out.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits from the start of `bytes`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    pub(crate) fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|b| b as u8)
    }

    /// Reads `n` bits (n ≤ 64) as the low bits of the result.
    pub(crate) fn read_bits(&mut self, mut n: u8) -> Option<u64> {
        if self.pos + usize::from(n) > self.bytes.len() * 8 {
            return None;
        }
        let mut out: u64 = 0;
        while n > 0 {
            let byte = self.bytes[self.pos / 8];
            let used = (self.pos % 8) as u8;
            let avail = 8 - used;
            let k = avail.min(n);
            let bits = (byte >> (avail - k)) & (((1u16 << k) - 1) as u8);
            out = (out << k) | u64::from(bits);
            self.pos += usize::from(k);
            n -= k;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_msb_first() {
        let mut w = BitWriter::default();
        w.write_bit(true);
        w.write_bits(0b0101, 4);
        w.write_bits(u64::MAX, 64);
        w.write_byte(0xab);
        assert_eq!(w.bytes()[0], 0b1010_1111);
        let b = w.into_bytes();
        let mut r = BitReader::new(&b);
        assert_eq!(r.read_bit(), Some(true));
        assert_eq!(r.read_bits(4), Some(0b0101));
        assert_eq!(r.read_bits(64), Some(u64::MAX));
        assert_eq!(r.read_byte(), Some(0xab));
        assert_eq!(r.read_bits(8), None);
    }
}
