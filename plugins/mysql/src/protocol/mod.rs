//! The part of the MySQL client/server protocol a monitoring client needs:
//! packet framing, the v10 handshake with `mysql_native_password` and the
//! `caching_sha2_password` fast path, text-protocol `COM_QUERY` and `COM_QUIT`.
//!
//! Everything works over any `Read + Write` stream, so the parsers are tested
//! with byte fixtures and the connection runs over `std::net::TcpStream` both
//! natively and in `wasm32-wasip2`. Malformed input is an error that names the
//! packet and the byte offset, never a panic.

pub mod auth;
pub mod conn;
pub mod handshake;
pub mod packet;
pub mod reader;
pub mod result;

pub use conn::{Conn, ResultSet, Session};
pub use result::ServerError;

/// Capability flags (`CLIENT_*`) this client uses or checks.
pub mod caps {
    pub const LONG_PASSWORD: u32 = 0x0000_0001;
    pub const LONG_FLAG: u32 = 0x0000_0004;
    pub const CONNECT_WITH_DB: u32 = 0x0000_0008;
    pub const PROTOCOL_41: u32 = 0x0000_0200;
    pub const TRANSACTIONS: u32 = 0x0000_2000;
    pub const SECURE_CONNECTION: u32 = 0x0000_8000;
    pub const MULTI_RESULTS: u32 = 0x0002_0000;
    pub const PLUGIN_AUTH: u32 = 0x0008_0000;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;
    pub const DEPRECATE_EOF: u32 = 0x0100_0000;
}

/// `SERVER_MORE_RESULTS_EXISTS` in the status flags of OK and EOF packets.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// Why a protocol exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The stream failed (closed, reset, timed out).
    #[error("{context}: {}", describe_io(source))]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The peer sent bytes that are not a valid packet of the expected kind.
    #[error("malformed {packet}: {detail}")]
    Malformed { packet: &'static str, detail: String },
    /// The server answered with an ERR packet; the connection is still usable.
    #[error("{0}")]
    Server(#[from] ServerError),
    /// The server wants something this client does not do.
    #[error("{0}")]
    Unsupported(String),
    /// An earlier error left the connection in an unknown state.
    #[error("connection unusable after an earlier error: {0}")]
    Broken(String),
}

impl ProtocolError {
    pub(crate) fn malformed(packet: &'static str, detail: impl Into<String>) -> Self {
        ProtocolError::Malformed { packet, detail: detail.into() }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ProtocolError::Io { context: context.into(), source }
    }

    /// The server's error, when the server refused a command.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            ProtocolError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// An I/O error in the words an operator expects (`connection refused`),
/// without Rust's `(os error 111)` suffix.
pub fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset by peer".into(),
        ErrorKind::ConnectionAborted => "connection aborted".into(),
        ErrorKind::UnexpectedEof => "server closed the connection".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}
