//! Packet framing: a 3-byte little-endian length and a 1-byte sequence id
//! before each payload. A payload of 16 MiB - 1 bytes or more is split into
//! packets of exactly that size, ended by a shorter (possibly empty) one.

use super::ProtocolError;
use std::io::{Read, Write};

/// The largest payload one packet carries; a packet this long has a successor.
pub const MAX_PACKET_PAYLOAD: usize = 0xFF_FFFF;

/// The largest logical payload accepted from the server. The exporter's
/// largest answer (`SHOW GLOBAL VARIABLES`) is about 50 KiB; this bound only
/// stops a broken server from filling the plugin's memory.
pub const DEFAULT_MAX_PAYLOAD: usize = 64 << 20;

/// Reads and writes packets, tracking the sequence id of one command.
#[derive(Debug)]
pub struct PacketIo<S> {
    stream: S,
    seq: u8,
    max_payload: usize,
}

impl<S: Read + Write> PacketIo<S> {
    pub fn new(stream: S) -> Self {
        Self { stream, seq: 0, max_payload: DEFAULT_MAX_PAYLOAD }
    }

    /// Limit the size of one logical payload read from the peer.
    pub fn with_max_payload(mut self, max_payload: usize) -> Self {
        self.max_payload = max_payload;
        self
    }

    /// Start a new command: the next packet sent has sequence id 0.
    pub fn reset_sequence(&mut self) {
        self.seq = 0;
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Read one logical payload, joining split packets.
    pub fn read_payload(&mut self) -> Result<Vec<u8>, ProtocolError> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            self.stream
                .read_exact(&mut header)
                .map_err(|e| ProtocolError::io(format!("reading packet header (sequence id {})", self.seq), e))?;
            let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            if header[3] != self.seq {
                return Err(ProtocolError::malformed(
                    "packet header",
                    format!("sequence id at byte 3: expected {}, got {}", self.seq, header[3]),
                ));
            }
            self.seq = self.seq.wrapping_add(1);
            if payload.len() + len > self.max_payload {
                return Err(ProtocolError::malformed(
                    "packet header",
                    format!(
                        "payload length at byte 0: {} bytes would exceed the limit of {} bytes",
                        payload.len() + len,
                        self.max_payload
                    ),
                ));
            }
            // Read through `take` so a peer that announces 16 MiB and sends
            // nothing costs no 16 MiB allocation.
            let before = payload.len();
            (&mut self.stream)
                .take(len as u64)
                .read_to_end(&mut payload)
                .map_err(|e| ProtocolError::io(format!("reading a {len}-byte packet payload"), e))?;
            if payload.len() - before != len {
                return Err(ProtocolError::io(
                    format!("reading a {len}-byte packet payload, got {} bytes", payload.len() - before),
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            if len < MAX_PACKET_PAYLOAD {
                return Ok(payload);
            }
        }
    }

    /// Write one logical payload, splitting it as the protocol requires.
    pub fn write_payload(&mut self, payload: &[u8]) -> Result<(), ProtocolError> {
        let mut out = Vec::with_capacity(payload.len() + 4 * (1 + payload.len() / MAX_PACKET_PAYLOAD));
        let mut rest = payload;
        loop {
            let chunk = &rest[..rest.len().min(MAX_PACKET_PAYLOAD)];
            let len = chunk.len() as u32;
            out.extend_from_slice(&len.to_le_bytes()[..3]);
            out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(chunk);
            rest = &rest[chunk.len()..];
            // A full-size packet always announces a successor, even an empty one.
            if chunk.len() < MAX_PACKET_PAYLOAD {
                break;
            }
        }
        self.stream.write_all(&out).map_err(|e| ProtocolError::io("sending a packet", e))?;
        self.stream.flush().map_err(|e| ProtocolError::io("sending a packet", e))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// An in-memory peer: reads come from `input`, writes collect in `output`.
    #[derive(Debug, Default)]
    pub struct Duplex {
        pub input: Cursor<Vec<u8>>,
        pub output: Vec<u8>,
    }

    impl Duplex {
        pub fn new(input: Vec<u8>) -> Self {
            Self { input: Cursor::new(input), output: Vec::new() }
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Frame `payload` as one packet with sequence id `seq` (no splitting).
    pub fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        out.push(seq);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reads_one_packet() {
        let mut io = PacketIo::new(Duplex::new(vec![3, 0, 0, 0, b'a', b'b', b'c']));
        assert_eq!(io.read_payload().unwrap(), b"abc");
    }

    #[test]
    fn joins_a_split_payload() {
        let big = vec![7u8; MAX_PACKET_PAYLOAD];
        let mut input = frame(0, &big);
        input.extend(frame(1, b"tail"));
        let mut io = PacketIo::new(Duplex::new(input));
        let payload = io.read_payload().unwrap();
        assert_eq!(payload.len(), MAX_PACKET_PAYLOAD + 4);
        assert_eq!(&payload[MAX_PACKET_PAYLOAD..], b"tail");
    }

    #[test]
    fn a_full_size_payload_ends_with_an_empty_packet() {
        let big = vec![1u8; MAX_PACKET_PAYLOAD];
        let mut io = PacketIo::new(Duplex::new(Vec::new()));
        io.write_payload(&big).unwrap();
        let out = io.into_inner().output;
        assert_eq!(out.len(), 4 + MAX_PACKET_PAYLOAD + 4);
        assert_eq!(&out[..4], &[0xFF, 0xFF, 0xFF, 0]);
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 1]);
        // And it reads back as one payload.
        let mut io = PacketIo::new(Duplex::new(out));
        assert_eq!(io.read_payload().unwrap().len(), MAX_PACKET_PAYLOAD);
    }

    #[test]
    fn writes_split_packets_with_rising_sequence_ids() {
        let big = vec![2u8; MAX_PACKET_PAYLOAD + 10];
        let mut io = PacketIo::new(Duplex::new(Vec::new()));
        io.write_payload(&big).unwrap();
        let out = io.into_inner().output;
        assert_eq!(&out[..4], &[0xFF, 0xFF, 0xFF, 0]);
        let second = 4 + MAX_PACKET_PAYLOAD;
        assert_eq!(&out[second..second + 4], &[10, 0, 0, 1]);
        assert_eq!(out.len(), second + 4 + 10);
    }

    #[test]
    fn small_packets_have_one_header() {
        let mut io = PacketIo::new(Duplex::new(Vec::new()));
        io.write_payload(b"\x03SELECT 1").unwrap();
        io.reset_sequence();
        io.write_payload(b"").unwrap();
        assert_eq!(io.into_inner().output, [&[9u8, 0, 0, 0][..], b"\x03SELECT 1", &[0, 0, 0, 0]].concat());
    }

    #[test]
    fn out_of_order_sequence_id_is_an_error() {
        let mut io = PacketIo::new(Duplex::new(frame(5, b"x")));
        let e = io.read_payload().unwrap_err().to_string();
        assert_eq!(e, "malformed packet header: sequence id at byte 3: expected 0, got 5");
    }

    #[test]
    fn truncated_header_and_payload() {
        let e = PacketIo::new(Duplex::new(vec![1, 0])).read_payload().unwrap_err().to_string();
        assert_eq!(e, "reading packet header (sequence id 0): server closed the connection");
        let e = PacketIo::new(Duplex::new(vec![5, 0, 0, 0, b'a'])).read_payload().unwrap_err().to_string();
        assert_eq!(e, "reading a 5-byte packet payload, got 1 bytes: server closed the connection");
    }

    #[test]
    fn oversized_payload_is_refused_before_reading_it() {
        let mut io = PacketIo::new(Duplex::new(vec![0xFF, 0xFF, 0xFF, 0])).with_max_payload(1024);
        let e = io.read_payload().unwrap_err().to_string();
        assert!(e.contains("would exceed the limit of 1024 bytes"), "{e}");
    }
}
