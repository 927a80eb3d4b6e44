//! Authentication plugins: the scrambles a client sends instead of its password.

use super::ProtocolError;
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";

/// The authentication plugins this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPlugin {
    NativePassword,
    CachingSha2Password,
}

impl AuthPlugin {
    /// The plugin of this name, or an error naming what is supported.
    pub fn from_name(name: &str) -> Result<Self, ProtocolError> {
        match name {
            NATIVE_PASSWORD => Ok(AuthPlugin::NativePassword),
            CACHING_SHA2_PASSWORD => Ok(AuthPlugin::CachingSha2Password),
            other => Err(ProtocolError::Unsupported(format!(
                "the server asks for authentication plugin {other:?}; this client supports \
                 {NATIVE_PASSWORD} and {CACHING_SHA2_PASSWORD} (create the monitoring user \
                 IDENTIFIED WITH {NATIVE_PASSWORD})"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthPlugin::NativePassword => NATIVE_PASSWORD,
            AuthPlugin::CachingSha2Password => CACHING_SHA2_PASSWORD,
        }
    }

    /// The auth response for `password` and the server's `nonce`. An empty
    /// password is sent as an empty response, as the reference clients do.
    pub fn scramble(self, password: &[u8], nonce: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        if password.is_empty() {
            return Ok(Vec::new());
        }
        // Servers send the 20-byte nonce NUL-terminated in some packets.
        let nonce = match nonce {
            [head @ .., 0] if head.len() >= 20 => head,
            _ => nonce,
        };
        if nonce.len() < 20 {
            return Err(ProtocolError::malformed(
                "authentication data",
                format!("nonce at byte 0: {} bytes, {} needs 20", nonce.len(), self.name()),
            ));
        }
        let nonce = &nonce[..20];
        Ok(match self {
            AuthPlugin::NativePassword => native_password(password, nonce),
            AuthPlugin::CachingSha2Password => caching_sha2_password(password, nonce),
        })
    }
}

/// `SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))`.
pub fn native_password(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(nonce);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)`.
pub fn caching_sha2_password(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut hasher = Sha256::new();
    hasher.update(stage2);
    hasher.update(nonce);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &[u8; 20] = b"\x3a\x5b\x11\x7f\x01\x22\x68\x45\x0c\x73\x2e\x4f\x61\x19\x55\x3d\x7e\x2a\x06\x50";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Check a native response the way the server does: it stores only
    /// `SHA1(SHA1(password))`, the hash `PASSWORD()` prints after `*`.
    fn server_accepts_native(stored: &[u8], nonce: &[u8], response: &[u8]) -> bool {
        let mask = Sha1::new().chain_update(nonce).chain_update(stored).finalize();
        let candidate: Vec<u8> = response.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        Sha1::digest(&candidate).as_slice() == stored
    }

    #[test]
    fn native_password_passes_the_servers_check() {
        // MySQL's documented `PASSWORD('password')`.
        let stored = unhex("2470c0c06dee42fd1618bb99005adca2ec9d1e19");
        let response = AuthPlugin::NativePassword.scramble(b"password", NONCE).unwrap();
        assert_eq!(response.len(), 20);
        assert!(server_accepts_native(&stored, NONCE, &response));
        let wrong = AuthPlugin::NativePassword.scramble(b"Password", NONCE).unwrap();
        assert!(!server_accepts_native(&stored, NONCE, &wrong));
    }

    #[test]
    fn native_password_stage_one_is_plain_sha1() {
        // SHA1("password"), the well-known digest: the response XOR the mask.
        let stored = unhex("2470c0c06dee42fd1618bb99005adca2ec9d1e19");
        let response = native_password(b"password", NONCE);
        let mask = Sha1::new().chain_update(NONCE).chain_update(&stored).finalize();
        let stage1: Vec<u8> = response.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(hex(&stage1), "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8");
    }

    #[test]
    fn caching_sha2_passes_the_servers_fast_check() {
        // The server caches SHA256(SHA256(password)); SHA256("password") is
        // the well-known 5e8848… digest.
        let stage1 = unhex("5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8");
        let cached = Sha256::digest(&stage1);
        let response = AuthPlugin::CachingSha2Password.scramble(b"password", NONCE).unwrap();
        assert_eq!(response.len(), 32);
        let mask = Sha256::new().chain_update(cached).chain_update(NONCE).finalize();
        let candidate: Vec<u8> = response.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(candidate, stage1);
        assert_eq!(Sha256::digest(&candidate), cached);
    }

    #[test]
    fn nul_terminated_nonce_and_empty_password() {
        let mut with_nul = NONCE.to_vec();
        with_nul.push(0);
        let plugin = AuthPlugin::NativePassword;
        assert_eq!(plugin.scramble(b"pw", &with_nul).unwrap(), plugin.scramble(b"pw", NONCE).unwrap());
        assert!(plugin.scramble(b"", NONCE).unwrap().is_empty());
        let e = plugin.scramble(b"pw", &NONCE[..8]).unwrap_err().to_string();
        assert!(e.contains("8 bytes, mysql_native_password needs 20"), "{e}");
    }

    #[test]
    fn unknown_plugins_are_named() {
        let e = AuthPlugin::from_name("auth_gssapi_client").unwrap_err().to_string();
        assert!(e.contains("\"auth_gssapi_client\"") && e.contains("mysql_native_password"), "{e}");
    }
}
