//! Whatever a server (or something pretending to be one) sends, the plugin
//! answers with an error or with data, never with a panic.

use proptest::prelude::*;
use std::io::{Cursor, Read, Write};
use wasmon_mysql::collectors::{Families, global_status, global_variables, innodb_cmp, slave_status};
use wasmon_mysql::protocol::handshake::{parse_auth_switch, parse_handshake};
use wasmon_mysql::protocol::packet::PacketIo;
use wasmon_mysql::protocol::reader::Reader;
use wasmon_mysql::protocol::result::{parse_column, parse_eof, parse_err, parse_ok, parse_row};
use wasmon_mysql::protocol::{Conn, ResultSet};
use wasmon_mysql::values::{parse_status, version_number};

/// A peer that plays back `input` and swallows what it is sent.
struct Peer(Cursor<Vec<u8>>);

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Frame payloads as packets with sequence ids from `seq`.
fn framed(seq: u8, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes()[..3]);
        out.push(seq.wrapping_add(i as u8));
        out.extend_from_slice(p);
    }
    out
}

/// A valid MariaDB greeting with a 20-byte nonce and native password.
fn greeting() -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"10.11.19-MariaDB\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh");
    p.push(0);
    p.extend_from_slice(&0xF7FEu16.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&0x81BFu16.to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"0123456789AB\0");
    p.extend_from_slice(b"mysql_native_password\0");
    p
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)
}

fn result_sets() -> impl Strategy<Value = ResultSet> {
    let value = prop_oneof![
        Just(None),
        "[ -~]{0,24}".prop_map(Some),
        prop::sample::select(vec!["ON", "OFF", "Yes", "1e400", "Apr 10 12:34:56 2030 GMT", "0/0/0/0/0", "-1.5"])
            .prop_map(|s| Some(s.to_string())),
    ];
    (1usize..8).prop_flat_map(move |n| {
        (
            prop::collection::vec("[A-Za-z_]{1,12}", n),
            prop::collection::vec(prop::collection::vec(value.clone(), n..=n), 0..6),
        )
            .prop_map(|(columns, rows)| ResultSet { columns, rows })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn packet_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128), columns in 0usize..8) {
        let _ = parse_handshake(&bytes);
        let _ = parse_auth_switch(&bytes);
        let _ = parse_err(&bytes);
        let _ = parse_ok(&bytes);
        let _ = parse_eof(&bytes);
        let _ = parse_column(&bytes);
        let _ = parse_row(&bytes, columns);
        let mut r = Reader::new(&bytes, "fuzz packet");
        while r.lenenc_bytes_or_null("value").is_ok() && !r.is_empty() {}
    }

    #[test]
    fn packets_read_from_any_stream(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut io = PacketIo::new(Peer(Cursor::new(bytes))).with_max_payload(1 << 16);
        while io.read_payload().is_ok() {}
    }

    #[test]
    fn handshake_with_any_server(script in payloads(), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Conn::handshake(Peer(Cursor::new(framed(0, &script))), "u", b"pw");
        let _ = Conn::handshake(Peer(Cursor::new(raw)), "u", b"pw");
    }

    #[test]
    fn queries_on_any_answer(answers in payloads()) {
        let mut script = framed(0, &[greeting()]);
        script.extend(framed(2, &[vec![0, 0, 0, 2, 0, 0, 0]]));
        script.extend(framed(1, &answers));
        let mut conn = Conn::handshake(Peer(Cursor::new(script)), "u", b"pw").unwrap();
        for _ in 0..3 {
            let _ = conn.query("SHOW GLOBAL STATUS");
        }
    }

    #[test]
    fn collectors_on_any_result_set(rs in result_sets()) {
        let mut out = Families::default();
        let _ = global_status::families(&rs, &mut out);
        let _ = global_variables::families(&rs, &mut out);
        let _ = innodb_cmp::cmp_families(&rs, &mut out);
        let _ = innodb_cmp::cmpmem_families(&rs, &mut out);
        slave_status::families(&rs, &mut out);
    }

    #[test]
    fn value_parsers_never_panic(text in "\\PC{0,40}") {
        let _ = parse_status(&text);
        let _ = version_number(&text);
        let _ = global_variables::gcache_size_bytes(&text);
    }
}
