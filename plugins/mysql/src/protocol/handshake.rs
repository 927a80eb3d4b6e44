//! The connection phase: the server's Initial Handshake (protocol v10), the
//! client's HandshakeResponse41 and the AuthSwitchRequest.

use super::reader::Reader;
use super::result::parse_err;
use super::{ProtocolError, caps};

/// What the server says about itself in its first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub server_version: String,
    pub connection_id: u32,
    /// The nonce for the auth scramble (usually 20 bytes).
    pub nonce: Vec<u8>,
    pub capabilities: u32,
    pub charset: u8,
    pub status: u16,
    /// The server's default authentication plugin; empty without `CLIENT_PLUGIN_AUTH`.
    pub auth_plugin: String,
}

/// Parse the Initial Handshake packet. An ERR packet in its place (too many
/// connections, host blocked) becomes [`ProtocolError::Server`].
pub fn parse_handshake(payload: &[u8]) -> Result<Handshake, ProtocolError> {
    if payload.first() == Some(&0xFF) {
        return Err(ProtocolError::Server(parse_err(payload)?));
    }
    let mut r = Reader::new(payload, "handshake packet");
    let version = r.u8("protocol version")?;
    if version != 10 {
        return Err(ProtocolError::Unsupported(format!(
            "the server speaks handshake protocol version {version}; this client speaks version 10 (MySQL 4.1 and later)"
        )));
    }
    let server_version = String::from_utf8_lossy(r.nul_terminated("server version")?).into_owned();
    let connection_id = r.u32("connection id")?;
    let mut nonce = r.bytes(8, "auth-plugin-data part 1")?.to_vec();
    r.u8("filler")?;
    let mut capabilities = u32::from(r.u16("capability flags (lower)")?);
    let mut charset = 0;
    let mut status = 0;
    let mut auth_plugin = String::new();
    // Pre-4.1 servers end the packet here.
    if !r.is_empty() {
        charset = r.u8("character set")?;
        status = r.u16("status flags")?;
        capabilities |= u32::from(r.u16("capability flags (upper)")?) << 16;
        let auth_data_len = r.u8("auth-plugin-data length")?;
        // Six reserved bytes, then MariaDB's extended capabilities (unused here).
        r.bytes(10, "reserved bytes")?;
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let len = usize::from(auth_data_len).saturating_sub(8).max(13);
            let part2 = r.bytes(len, "auth-plugin-data part 2")?;
            nonce.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
        }
        if capabilities & caps::PLUGIN_AUTH != 0 {
            // MySQL 5.5.7–5.5.9 forgot the final NUL; accept both.
            auth_plugin = String::from_utf8_lossy(r.nul_terminated_or_rest()).into_owned();
        }
    }
    Ok(Handshake { server_version, connection_id, nonce, capabilities, charset, status, auth_plugin })
}

/// The fields of a HandshakeResponse41.
#[derive(Debug, Clone)]
pub struct HandshakeResponse<'a> {
    pub capabilities: u32,
    pub max_packet_size: u32,
    pub charset: u8,
    pub user: &'a str,
    pub auth_response: &'a [u8],
    /// Sent only with `CLIENT_CONNECT_WITH_DB`.
    pub database: Option<&'a str>,
    /// Sent only with `CLIENT_PLUGIN_AUTH`.
    pub auth_plugin: &'a str,
}

impl HandshakeResponse<'_> {
    /// The packet's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + self.user.len() + self.auth_response.len());
        p.extend_from_slice(&self.capabilities.to_le_bytes());
        p.extend_from_slice(&self.max_packet_size.to_le_bytes());
        p.push(self.charset);
        p.extend_from_slice(&[0u8; 23]);
        p.extend_from_slice(self.user.as_bytes());
        p.push(0);
        if self.capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            super::reader::put_lenenc_bytes(&mut p, self.auth_response);
        } else {
            // The one-byte length form; scrambles are 20 or 32 bytes.
            p.push(self.auth_response.len() as u8);
            p.extend_from_slice(self.auth_response);
        }
        if self.capabilities & caps::CONNECT_WITH_DB != 0 {
            p.extend_from_slice(self.database.unwrap_or("").as_bytes());
            p.push(0);
        }
        if self.capabilities & caps::PLUGIN_AUTH != 0 {
            p.extend_from_slice(self.auth_plugin.as_bytes());
            p.push(0);
        }
        p
    }
}

/// An AuthSwitchRequest: the server wants another plugin, with a new nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitch {
    pub plugin: String,
    pub nonce: Vec<u8>,
}

/// Parse an AuthSwitchRequest (first byte `0xFE`). The one-byte form is the
/// pre-4.1 "old password" request, which is refused.
pub fn parse_auth_switch(payload: &[u8]) -> Result<AuthSwitch, ProtocolError> {
    let mut r = Reader::new(payload, "auth switch request packet");
    let header = r.u8("header")?;
    if header != 0xFE {
        return Err(r.error("header", &format!("0x{header:02X} is not 0xFE")));
    }
    if r.is_empty() {
        return Err(ProtocolError::Unsupported(
            "the server asks for the pre-4.1 old_password authentication, which is insecure and not supported; \
             set a new password for the monitoring user"
                .into(),
        ));
    }
    let plugin = String::from_utf8_lossy(r.nul_terminated("plugin name")?).into_owned();
    let nonce = r.rest().to_vec();
    Ok(AuthSwitch { plugin, nonce })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A MariaDB 10.11-style handshake: "5.5.5-" version prefix, 20-byte
    /// nonce split 8 + 12 (+ NUL), plugin name at the end.
    pub fn handshake_packet(nonce: &[u8; 20], plugin: &str) -> Vec<u8> {
        let capabilities: u32 = 0xF7FE | (0x81BF << 16);
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.19-MariaDB-0+deb12u1\0");
        p.extend_from_slice(&42u32.to_le_bytes());
        p.extend_from_slice(&nonce[..8]);
        p.push(0);
        p.extend_from_slice(&(capabilities as u16).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x1D, 0, 0, 0]);
        p.extend_from_slice(&nonce[8..]);
        p.push(0);
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p
    }

    const NONCE: &[u8; 20] = b"abcdefgh0123456789AB";

    #[test]
    fn parses_a_mariadb_handshake() {
        let h = parse_handshake(&handshake_packet(NONCE, "mysql_native_password")).unwrap();
        assert_eq!(h.server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!(h.connection_id, 42);
        assert_eq!(h.nonce, NONCE);
        assert_eq!(h.charset, 45);
        assert_eq!(h.status, 2);
        assert_eq!(h.auth_plugin, "mysql_native_password");
        assert_ne!(h.capabilities & caps::PROTOCOL_41, 0);
        assert_ne!(h.capabilities & caps::PLUGIN_AUTH, 0);
    }

    #[test]
    fn plugin_name_without_nul() {
        let mut p = handshake_packet(NONCE, "caching_sha2_password");
        p.pop();
        assert_eq!(parse_handshake(&p).unwrap().auth_plugin, "caching_sha2_password");
    }

    #[test]
    fn every_truncation_is_an_error_with_an_offset() {
        let full = handshake_packet(NONCE, "mysql_native_password");
        // Up to the plugin name (which may run to the end) every cut is an error,
        // except the one right after the lower capability flags (a pre-4.1 packet).
        let plugin_at = full.len() - "mysql_native_password".len() - 1;
        for cut in 0..plugin_at {
            match parse_handshake(&full[..cut]) {
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.starts_with("malformed handshake packet: ") && e.contains(" at byte "), "{cut}: {e}");
                }
                Ok(h) => assert_eq!(cut, 1 + 33 + 4 + 8 + 1 + 2, "{cut}: {h:?}"),
            }
        }
    }

    #[test]
    fn err_instead_of_handshake() {
        let mut p = vec![0xFF];
        p.extend_from_slice(&1129u16.to_le_bytes());
        p.extend_from_slice(b"Host '10.0.0.9' is blocked because of many connection errors");
        let e = parse_handshake(&p).unwrap_err();
        assert_eq!(e.server_error().map(|e| e.code), Some(1129));
    }

    #[test]
    fn other_protocol_versions_are_refused() {
        let e = parse_handshake(&[9, b'3', b'.', b'2', 0]).unwrap_err().to_string();
        assert!(e.contains("protocol version 9"), "{e}");
    }

    #[test]
    fn encodes_handshake_response41() {
        let auth = [0xAAu8; 20];
        let response = HandshakeResponse {
            capabilities: caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH,
            max_packet_size: 16 << 20,
            charset: 45,
            user: "exporter",
            auth_response: &auth,
            database: None,
            auth_plugin: "mysql_native_password",
        };
        let p = response.encode();
        let mut expected = (caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH).to_le_bytes().to_vec();
        expected.extend_from_slice(&[0, 0, 0, 1, 45]);
        expected.extend_from_slice(&[0; 23]);
        expected.extend_from_slice(b"exporter\0");
        expected.push(20);
        expected.extend_from_slice(&auth);
        expected.extend_from_slice(b"mysql_native_password\0");
        assert_eq!(p, expected);
    }

    #[test]
    fn encodes_database_and_lenenc_auth_when_asked() {
        let response = HandshakeResponse {
            capabilities: caps::PROTOCOL_41 | caps::CONNECT_WITH_DB | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA,
            max_packet_size: 0,
            charset: 33,
            user: "u",
            auth_response: b"xy",
            database: Some("db"),
            auth_plugin: "ignored",
        };
        assert!(response.encode().ends_with(b"u\0\x02xydb\0"));
    }

    #[test]
    fn auth_switch_request() {
        let mut p = vec![0xFE];
        p.extend_from_slice(b"mysql_native_password\0");
        p.extend_from_slice(NONCE);
        p.push(0);
        let s = parse_auth_switch(&p).unwrap();
        assert_eq!(s.plugin, "mysql_native_password");
        assert_eq!(&s.nonce[..20], NONCE);
        let e = parse_auth_switch(&[0xFE]).unwrap_err().to_string();
        assert!(e.contains("old_password"), "{e}");
        let e = parse_auth_switch(b"\xFEno-nul").unwrap_err().to_string();
        assert!(e.contains("plugin name at byte 1: no NUL terminator"), "{e}");
    }
}
