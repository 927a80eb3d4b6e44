//! One client connection: authenticate, run text queries, quit.

use super::auth::AuthPlugin;
use super::handshake::{HandshakeResponse, parse_auth_switch, parse_handshake};
use super::packet::PacketIo;
use super::reader::Reader;
use super::result::{is_eof, parse_column, parse_eof, parse_err, parse_ok, parse_row};
use super::{ProtocolError, SERVER_MORE_RESULTS_EXISTS, caps};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The capabilities this client asks for (minus what the server lacks).
/// No `CLIENT_DEPRECATE_EOF`: result sets end with EOF packets, which every
/// server since 4.1 sends. No `CLIENT_SSL`: TLS is not supported.
const CLIENT_CAPABILITIES: u32 = caps::LONG_PASSWORD
    | caps::LONG_FLAG
    | caps::PROTOCOL_41
    | caps::TRANSACTIONS
    | caps::SECURE_CONNECTION
    | caps::MULTI_RESULTS
    | caps::PLUGIN_AUTH;

/// utf8mb4_general_ci, the Go driver's default.
const CHARSET_UTF8MB4_GENERAL_CI: u8 = 45;

/// The largest packet this client announces it accepts (16 MiB).
const MAX_PACKET_SIZE: u32 = 16 << 20;

/// Auth switches allowed before giving up (a server asks once at most).
const MAX_AUTH_ROUNDS: usize = 3;

/// The text result of one query. Statements without a result set (`SET`)
/// give one with no columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultSet {
    pub columns: Vec<String>,
    /// Each row has one value per column; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// Index of the column named `name` (exact match).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// Something that runs SQL: a live connection, or recorded answers in tests.
pub trait Session {
    fn query(&mut self, sql: &str) -> Result<ResultSet, ProtocolError>;
}

/// An authenticated connection.
#[derive(Debug)]
pub struct Conn<S> {
    io: PacketIo<S>,
    capabilities: u32,
    server_version: String,
    /// Set after an error that leaves the stream out of step.
    broken: Option<String>,
}

impl<S: Read + Write> Conn<S> {
    /// Read the server's greeting and authenticate as `user`. An
    /// authentication failure is [`ProtocolError::Server`] with the server's
    /// code (1045 for a wrong password). The password appears in no error.
    pub fn handshake(stream: S, user: &str, password: &[u8]) -> Result<Self, ProtocolError> {
        let mut io = PacketIo::new(stream);
        let greeting = parse_handshake(&io.read_payload()?)?;
        let required = caps::PROTOCOL_41 | caps::SECURE_CONNECTION;
        if greeting.capabilities & required != required {
            return Err(ProtocolError::Unsupported(format!(
                "server {} lacks protocol 4.1 authentication (CLIENT_PROTOCOL_41 and CLIENT_SECURE_CONNECTION)",
                greeting.server_version
            )));
        }
        let capabilities = CLIENT_CAPABILITIES & greeting.capabilities;
        // A server default this client cannot speak gets a native-password
        // answer; the server then either accepts it or switches plugins.
        let plugin = if capabilities & caps::PLUGIN_AUTH == 0 {
            AuthPlugin::NativePassword
        } else {
            AuthPlugin::from_name(&greeting.auth_plugin).unwrap_or(AuthPlugin::NativePassword)
        };
        let auth_response = plugin.scramble(password, &greeting.nonce)?;
        let response = HandshakeResponse {
            capabilities,
            max_packet_size: MAX_PACKET_SIZE,
            charset: CHARSET_UTF8MB4_GENERAL_CI,
            user,
            auth_response: &auth_response,
            database: None,
            auth_plugin: plugin.name(),
        };
        io.write_payload(&response.encode())?;
        let mut conn = Conn { io, capabilities, server_version: greeting.server_version, broken: None };
        conn.authenticate(plugin, password)?;
        Ok(conn)
    }

    /// Answer auth switches and more-data requests until OK or ERR.
    fn authenticate(&mut self, mut plugin: AuthPlugin, password: &[u8]) -> Result<(), ProtocolError> {
        for _ in 0..MAX_AUTH_ROUNDS {
            let payload = self.io.read_payload()?;
            match payload.first() {
                Some(0x00) => {
                    parse_ok(&payload)?;
                    return Ok(());
                }
                Some(0xFF) => return Err(ProtocolError::Server(parse_err(&payload)?)),
                Some(0xFE) => {
                    let switch = parse_auth_switch(&payload)?;
                    plugin = AuthPlugin::from_name(&switch.plugin)?;
                    let response = plugin.scramble(password, &switch.nonce)?;
                    self.io.write_payload(&response)?;
                }
                Some(0x01) if plugin == AuthPlugin::CachingSha2Password => match payload.get(1) {
                    // Fast authentication succeeded; an OK packet follows.
                    Some(3) => continue,
                    Some(4) => {
                        return Err(ProtocolError::Unsupported(
                            "the server asks for caching_sha2_password full authentication, which needs TLS or \
                             an RSA key exchange; neither is supported. Either create the monitoring user \
                             IDENTIFIED WITH mysql_native_password, or log in once with the mysql client so \
                             the server caches the password hash (the cache is lost on restart)"
                                .into(),
                        ));
                    }
                    other => {
                        let found = other.map_or_else(|| "nothing".to_string(), |b| format!("0x{b:02X}"));
                        return Err(ProtocolError::malformed(
                            "auth more data packet",
                            format!("status at byte 1: {found} is neither 3 (fast auth OK) nor 4 (full auth)"),
                        ));
                    }
                },
                Some(other) => {
                    return Err(ProtocolError::malformed(
                        "authentication result packet",
                        format!("header at byte 0: unexpected 0x{other:02X} during {} authentication", plugin.name()),
                    ));
                }
                None => return Err(ProtocolError::malformed("authentication result packet", "empty packet at byte 0")),
            }
        }
        Err(ProtocolError::Unsupported(format!(
            "authentication did not finish after {MAX_AUTH_ROUNDS} rounds (last plugin {})",
            plugin.name()
        )))
    }

    /// The version string from the greeting (MariaDB prefixes it with `5.5.5-`).
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The capabilities both sides agreed on.
    pub fn capabilities(&self) -> u32 {
        self.capabilities
    }

    /// Send `COM_QUERY` and read its text result set.
    pub fn query(&mut self, sql: &str) -> Result<ResultSet, ProtocolError> {
        if let Some(reason) = &self.broken {
            return Err(ProtocolError::Broken(reason.clone()));
        }
        let result = self.query_inner(sql);
        if let Err(e) = &result
            && e.server_error().is_none()
        {
            self.broken = Some(e.to_string());
        }
        result
    }

    fn query_inner(&mut self, sql: &str) -> Result<ResultSet, ProtocolError> {
        self.io.reset_sequence();
        let mut command = Vec::with_capacity(1 + sql.len());
        command.push(0x03);
        command.extend_from_slice(sql.as_bytes());
        self.io.write_payload(&command)?;
        let (result, mut more) = self.read_result()?;
        // A statement that yields several results (none of the exporter's
        // do) is read to the end so the connection stays in step.
        while more {
            more = self.read_result()?.1;
        }
        Ok(result)
    }

    /// Read one result: OK, ERR or a result set. Returns it and whether
    /// another result follows.
    fn read_result(&mut self) -> Result<(ResultSet, bool), ProtocolError> {
        let first = self.io.read_payload()?;
        match first.first() {
            Some(0x00) => {
                let ok = parse_ok(&first)?;
                return Ok((ResultSet::default(), ok.status & SERVER_MORE_RESULTS_EXISTS != 0));
            }
            Some(0xFF) => return Err(ProtocolError::Server(parse_err(&first)?)),
            Some(0xFB) => {
                return Err(ProtocolError::Unsupported("the server asked for a LOCAL INFILE upload".into()));
            }
            _ => {}
        }
        let mut r = Reader::new(&first, "column count packet");
        let count = r.lenenc_int("column count")?;
        r.finish("column count")?;
        // MySQL's own limit is 4096 columns per table.
        if count == 0 || count > 4096 {
            return Err(ProtocolError::malformed("column count packet", format!("column count at byte 0: {count}")));
        }
        let mut columns = Vec::with_capacity(count as usize);
        for _ in 0..count {
            columns.push(parse_column(&self.io.read_payload()?)?.name);
        }
        if self.capabilities & caps::DEPRECATE_EOF == 0 {
            parse_eof(&self.io.read_payload()?)?;
        }
        let mut rows = Vec::new();
        loop {
            let payload = self.io.read_payload()?;
            if is_eof(&payload) {
                let eof = parse_eof(&payload)?;
                let more = eof.status & SERVER_MORE_RESULTS_EXISTS != 0;
                return Ok((ResultSet { columns, rows }, more));
            }
            if payload.first() == Some(&0xFF) {
                return Err(ProtocolError::Server(parse_err(&payload)?));
            }
            rows.push(parse_row(&payload, columns.len())?);
        }
    }

    /// Send `COM_QUIT` and hand back the stream. The server closes the
    /// connection without answering; errors do not matter any more.
    pub fn quit(mut self) -> S {
        self.io.reset_sequence();
        let _ = self.io.write_payload(&[0x01]);
        self.io.into_inner()
    }
}

impl<S: Read + Write> Session for Conn<S> {
    fn query(&mut self, sql: &str) -> Result<ResultSet, ProtocolError> {
        Conn::query(self, sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::auth::{caching_sha2_password, native_password};
    use crate::protocol::handshake::tests::handshake_packet;
    use crate::protocol::packet::tests::{Duplex, frame};
    use crate::protocol::result::tests::{column_packet, eof_packet, err_packet, ok_packet, row_packet};

    const NONCE: &[u8; 20] = b"abcdefgh0123456789AB";

    /// Packets the server sends, framed with consecutive sequence ids from `first_seq`.
    fn packets(first_seq: u8, payloads: &[Vec<u8>]) -> Vec<u8> {
        payloads.iter().enumerate().flat_map(|(i, p)| frame(first_seq + i as u8, p)).collect()
    }

    fn server(script: Vec<u8>) -> Duplex {
        Duplex::new(script)
    }

    /// Split what the client wrote into (sequence id, payload) pairs.
    fn sent(output: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = output;
        while rest.len() >= 4 {
            let len = usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16;
            out.push((rest[3], rest[4..4 + len].to_vec()));
            rest = &rest[4 + len..];
        }
        out
    }

    fn login_ok() -> Vec<u8> {
        let mut s = packets(0, &[handshake_packet(NONCE, "mysql_native_password")]);
        s.extend(frame(2, &ok_packet(2)));
        s
    }

    #[test]
    fn native_password_login_sends_the_scramble() {
        let conn = Conn::handshake(server(login_ok()), "exporter", b"secret").unwrap();
        assert_eq!(conn.server_version(), "5.5.5-10.11.19-MariaDB-0+deb12u1");
        let out = sent(&conn.io.into_inner().output);
        assert_eq!(out.len(), 1);
        let (seq, response) = &out[0];
        assert_eq!(*seq, 1);
        let scramble = native_password(b"secret", NONCE);
        let mut tail = b"exporter\0".to_vec();
        tail.push(20);
        tail.extend_from_slice(&scramble);
        tail.extend_from_slice(b"mysql_native_password\0");
        assert!(response.ends_with(&tail), "{response:?}");
        assert!(!response.windows(6).any(|w| w == b"secret"), "the password itself is never sent");
    }

    #[test]
    fn wrong_password_is_the_servers_1045() {
        let mut script = packets(0, &[handshake_packet(NONCE, "mysql_native_password")]);
        script.extend(frame(
            2,
            &err_packet(1045, "28000", "Access denied for user 'exporter'@'127.0.0.1' (using password: YES)"),
        ));
        let e = Conn::handshake(server(script), "exporter", b"wrong").unwrap_err();
        assert_eq!(e.server_error().map(|e| e.code), Some(1045));
        assert!(!e.to_string().contains("wrong"));
    }

    #[test]
    fn auth_switch_to_native_password() {
        let mut switch = b"\xFEmysql_native_password\0".to_vec();
        let new_nonce = b"ZYXWVUTSRQPONMLKJIHG";
        switch.extend_from_slice(new_nonce);
        switch.push(0);
        let mut script = packets(0, &[handshake_packet(NONCE, "caching_sha2_password")]);
        script.extend(frame(2, &switch));
        script.extend(frame(4, &ok_packet(2)));
        let conn = Conn::handshake(server(script), "exporter", b"secret").unwrap();
        let out = sent(&conn.io.into_inner().output);
        assert_eq!(out.len(), 2);
        assert!(out[0].1.ends_with(b"caching_sha2_password\0"));
        assert!(out[0].1.windows(32).any(|w| w == caching_sha2_password(b"secret", NONCE).as_slice()));
        assert_eq!(out[1], (3, native_password(b"secret", new_nonce)));
    }

    #[test]
    fn caching_sha2_fast_path() {
        let mut script = packets(0, &[handshake_packet(NONCE, "caching_sha2_password")]);
        script.extend(packets(2, &[vec![0x01, 0x03], ok_packet(2)]));
        Conn::handshake(server(script), "exporter", b"secret").unwrap();
    }

    #[test]
    fn caching_sha2_full_authentication_is_refused_clearly() {
        let mut script = packets(0, &[handshake_packet(NONCE, "caching_sha2_password")]);
        script.extend(frame(2, &[0x01, 0x04]));
        let e = Conn::handshake(server(script), "exporter", b"secret").unwrap_err().to_string();
        assert!(e.contains("full authentication") && e.contains("TLS or an RSA key exchange"), "{e}");
    }

    #[test]
    fn unknown_switch_plugin_is_named() {
        let mut script = packets(0, &[handshake_packet(NONCE, "mysql_native_password")]);
        script.extend(frame(2, b"\xFEauth_ed25519\0nonce"));
        let e = Conn::handshake(server(script), "exporter", b"secret").unwrap_err().to_string();
        assert!(e.contains("\"auth_ed25519\""), "{e}");
    }

    #[test]
    fn too_many_connections_before_the_handshake() {
        let mut p = vec![0xFF];
        p.extend_from_slice(&1040u16.to_le_bytes());
        p.extend_from_slice(b"Too many connections");
        let e = Conn::handshake(server(frame(0, &p)), "exporter", b"").unwrap_err();
        assert_eq!(e.to_string(), "ERROR 1040 (HY000): Too many connections");
    }

    fn logged_in(replies: Vec<u8>) -> Conn<Duplex> {
        let mut script = login_ok();
        script.extend(replies);
        Conn::handshake(server(script), "exporter", b"secret").unwrap()
    }

    #[test]
    fn query_reads_a_text_result_set() {
        let replies = packets(
            1,
            &[
                vec![0x02],
                column_packet("Variable_name"),
                column_packet("Value"),
                eof_packet(0x22),
                row_packet(&[Some("Aborted_clients"), Some("0")]),
                row_packet(&[Some("Rpl_status"), None]),
                eof_packet(0x22),
            ],
        );
        let mut conn = logged_in(replies);
        let rs = conn.query("SHOW GLOBAL STATUS").unwrap();
        assert_eq!(rs.columns, ["Variable_name", "Value"]);
        assert_eq!(
            rs.rows,
            vec![vec![Some("Aborted_clients".into()), Some("0".into())], vec![Some("Rpl_status".into()), None]]
        );
        let out = sent(&conn.io.into_inner().output);
        assert_eq!(out[1], (0, b"\x03SHOW GLOBAL STATUS".to_vec()));
    }

    #[test]
    fn query_ok_then_server_error_keeps_the_connection() {
        let mut replies = frame(1, &ok_packet(2));
        replies.extend(frame(
            1,
            &err_packet(
                1227,
                "42000",
                "Access denied; you need (at least one of) the SUPER, SLAVE MONITOR privilege(s) for this operation",
            ),
        ));
        replies.extend(packets(1, &[vec![0x01], column_packet("@@version"), eof_packet(2)]));
        replies.extend(frame(4, &row_packet(&[Some("10.11.19-MariaDB")])));
        replies.extend(frame(5, &eof_packet(2)));
        let mut conn = logged_in(replies);
        assert_eq!(conn.query("SET lock_wait_timeout=2").unwrap(), ResultSet::default());
        let e = conn.query("SHOW ALL SLAVES STATUS").unwrap_err();
        assert_eq!(e.server_error().map(|e| e.code), Some(1227));
        let rs = conn.query("SELECT @@version").unwrap();
        assert_eq!(rs.rows, vec![vec![Some("10.11.19-MariaDB".into())]]);
    }

    #[test]
    fn multiple_results_are_drained() {
        let replies = packets(
            1,
            &[
                vec![0x01],
                column_packet("a"),
                eof_packet(0),
                row_packet(&[Some("1")]),
                eof_packet(SERVER_MORE_RESULTS_EXISTS),
                ok_packet(0),
            ],
        );
        let mut replies = replies;
        replies.extend(packets(1, &[vec![0x01], column_packet("b"), eof_packet(0), eof_packet(0)]));
        let mut conn = logged_in(replies);
        assert_eq!(conn.query("CALL p()").unwrap().columns, ["a"]);
        assert_eq!(conn.query("SELECT b").unwrap().columns, ["b"]);
    }

    #[test]
    fn a_malformed_reply_breaks_the_connection() {
        let replies = packets(1, &[vec![0x01], column_packet("a"), vec![0x05]]);
        let mut conn = logged_in(replies);
        let e = conn.query("SELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("malformed EOF packet: header at byte 0: 0x05"), "{e}");
        let e = conn.query("SELECT 2").unwrap_err().to_string();
        assert!(e.starts_with("connection unusable after an earlier error: malformed EOF packet"), "{e}");
    }

    #[test]
    fn error_in_the_middle_of_rows() {
        let replies = packets(
            1,
            &[
                vec![0x01],
                column_packet("a"),
                eof_packet(0),
                row_packet(&[Some("1")]),
                err_packet(1317, "70100", "Query execution was interrupted"),
            ],
        );
        let mut conn = logged_in(replies);
        assert_eq!(conn.query("SELECT a").unwrap_err().server_error().map(|e| e.code), Some(1317));
    }

    #[test]
    fn quit_sends_com_quit() {
        let mut conn = logged_in(frame(1, &ok_packet(2)));
        conn.query("SET lock_wait_timeout=2").unwrap();
        let out = sent(&conn.quit().output);
        assert_eq!(out.last(), Some(&(0, vec![0x01])));
    }

    #[test]
    fn local_infile_is_refused() {
        let mut conn = logged_in(frame(1, b"\xFB/etc/passwd"));
        let e = conn.query("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t").unwrap_err().to_string();
        assert!(e.contains("LOCAL INFILE"), "{e}");
    }
}
