//! Server responses: OK, ERR and EOF packets, column definitions and
//! text-protocol rows.

use super::ProtocolError;
use super::reader::Reader;

/// An ERR packet: the server refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ERROR {code} ({state}): {message}")]
pub struct ServerError {
    /// `1045` for a wrong password, `1227` for a missing privilege, ...
    pub code: u16,
    /// The five-character SQLSTATE (`28000`), `HY000` when the server sent none.
    pub state: String,
    pub message: String,
}

/// Parse an ERR packet (first byte `0xFF`). Before the handshake settles a
/// server may leave out the `#` and SQLSTATE; both forms are read.
pub fn parse_err(payload: &[u8]) -> Result<ServerError, ProtocolError> {
    let mut r = Reader::new(payload, "ERR packet");
    let header = r.u8("header")?;
    if header != 0xFF {
        return Err(ProtocolError::malformed("ERR packet", format!("header at byte 0: 0x{header:02X} is not 0xFF")));
    }
    let code = r.u16("error code")?;
    let state = if r.peek() == Some(b'#') {
        r.u8("SQL state marker")?;
        String::from_utf8_lossy(r.bytes(5, "SQL state")?).into_owned()
    } else {
        "HY000".to_string()
    };
    let message = String::from_utf8_lossy(r.rest()).into_owned();
    Ok(ServerError { code, state, message })
}

/// An OK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

/// Parse an OK packet (first byte `0x00`; `0xFE` where it ends a result set
/// under `CLIENT_DEPRECATE_EOF`). Trailing info text is ignored.
pub fn parse_ok(payload: &[u8]) -> Result<OkPacket, ProtocolError> {
    let mut r = Reader::new(payload, "OK packet");
    let header = r.u8("header")?;
    if header != 0x00 && header != 0xFE {
        return Err(ProtocolError::malformed("OK packet", format!("header at byte 0: 0x{header:02X} is not 0x00")));
    }
    let affected_rows = r.lenenc_int("affected rows")?;
    let last_insert_id = r.lenenc_int("last insert id")?;
    let status = r.u16("status flags")?;
    let warnings = r.u16("warning count")?;
    Ok(OkPacket { affected_rows, last_insert_id, status, warnings })
}

/// True for an EOF packet: `0xFE` and shorter than 9 bytes (a row can start
/// with `0xFE` too, as the prefix of an 8-byte length, but is then longer).
pub fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xFE) && payload.len() < 9
}

/// An EOF packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: u16,
}

/// Parse an EOF packet (protocol 4.1 form).
pub fn parse_eof(payload: &[u8]) -> Result<EofPacket, ProtocolError> {
    let mut r = Reader::new(payload, "EOF packet");
    let header = r.u8("header")?;
    if header != 0xFE || payload.len() >= 9 {
        return Err(ProtocolError::malformed(
            "EOF packet",
            format!("header at byte 0: 0x{header:02X} in a {}-byte packet is not an EOF", payload.len()),
        ));
    }
    let warnings = r.u16("warning count")?;
    let status = r.u16("status flags")?;
    Ok(EofPacket { warnings, status })
}

/// One column of a result set (`ColumnDefinition41`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub charset: u16,
    pub length: u32,
    pub column_type: u8,
    pub flags: u16,
    pub decimals: u8,
}

/// Parse a column definition packet.
pub fn parse_column(payload: &[u8]) -> Result<Column, ProtocolError> {
    let mut r = Reader::new(payload, "column definition packet");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let _catalog = r.lenenc_bytes("catalog")?;
    let schema = text(r.lenenc_bytes("schema")?);
    let table = text(r.lenenc_bytes("table")?);
    let _org_table = r.lenenc_bytes("original table")?;
    let name = text(r.lenenc_bytes("column name")?);
    let _org_name = r.lenenc_bytes("original column name")?;
    let fixed = r.lenenc_int("length of fixed fields")?;
    if fixed < 0x0C {
        return Err(r.error("length of fixed fields", &format!("{fixed} is less than 12")));
    }
    let charset = r.u16("character set")?;
    let length = r.u32("column length")?;
    let column_type = r.u8("column type")?;
    let flags = r.u16("column flags")?;
    let decimals = r.u8("decimals")?;
    // Two filler bytes and, from some servers, more fixed fields; skip them.
    r.bytes(fixed as usize - 10, "fixed fields")?;
    Ok(Column { schema, table, name, charset, length, column_type, flags, decimals })
}

/// One text-protocol row: each value a length-encoded string or NULL.
/// Values are decoded as UTF-8, invalid sequences replaced.
pub fn parse_row(payload: &[u8], columns: usize) -> Result<Vec<Option<String>>, ProtocolError> {
    let mut r = Reader::new(payload, "row packet");
    let mut values = Vec::with_capacity(columns);
    for i in 0..columns {
        let value = r.lenenc_bytes_or_null(&format!("value of column {}", i + 1))?;
        values.push(value.map(|v| String::from_utf8_lossy(v).into_owned()));
    }
    r.finish(&format!("end of a {columns}-column row"))?;
    Ok(values)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::reader::{put_lenenc_bytes, put_lenenc_int};

    /// An ERR packet as a server sends it.
    pub fn err_packet(code: u16, state: &str, message: &str) -> Vec<u8> {
        let mut p = vec![0xFF];
        p.extend_from_slice(&code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(state.as_bytes());
        p.extend_from_slice(message.as_bytes());
        p
    }

    /// An OK packet with `status` flags.
    pub fn ok_packet(status: u16) -> Vec<u8> {
        let mut p = vec![0x00, 0x00, 0x00];
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p
    }

    /// An EOF packet with `status` flags.
    pub fn eof_packet(status: u16) -> Vec<u8> {
        let mut p = vec![0xFE, 0, 0];
        p.extend_from_slice(&status.to_le_bytes());
        p
    }

    /// A column definition as MariaDB sends it for `SHOW` output.
    pub fn column_packet(name: &str) -> Vec<u8> {
        let mut p = Vec::new();
        for field in ["def", "information_schema", "VARIABLES", "VARIABLES", name, name] {
            put_lenenc_bytes(&mut p, field.as_bytes());
        }
        put_lenenc_int(&mut p, 0x0C);
        p.extend_from_slice(&33u16.to_le_bytes()); // utf8_general_ci
        p.extend_from_slice(&192u32.to_le_bytes());
        p.push(0xFD); // VAR_STRING
        p.extend_from_slice(&1u16.to_le_bytes()); // NOT NULL
        p.push(0);
        p.extend_from_slice(&[0, 0]);
        p
    }

    /// A text row; `None` is NULL.
    pub fn row_packet(values: &[Option<&str>]) -> Vec<u8> {
        let mut p = Vec::new();
        for v in values {
            match v {
                Some(v) => put_lenenc_bytes(&mut p, v.as_bytes()),
                None => p.push(0xFB),
            }
        }
        p
    }

    #[test]
    fn err_with_sql_state() {
        let e = parse_err(&err_packet(1045, "28000", "Access denied for user 'x'@'127.0.0.1' (using password: YES)"))
            .unwrap();
        assert_eq!(e.code, 1045);
        assert_eq!(e.state, "28000");
        assert_eq!(e.to_string(), "ERROR 1045 (28000): Access denied for user 'x'@'127.0.0.1' (using password: YES)");
    }

    #[test]
    fn err_without_sql_state() {
        // MariaDB's "Too many connections" before the handshake has no marker.
        let mut p = vec![0xFF];
        p.extend_from_slice(&1040u16.to_le_bytes());
        p.extend_from_slice(b"Too many connections");
        let e = parse_err(&p).unwrap();
        assert_eq!((e.code, e.state.as_str(), e.message.as_str()), (1040, "HY000", "Too many connections"));
    }

    #[test]
    fn short_err_packet() {
        let e = parse_err(&[0xFF, 0x15]).unwrap_err().to_string();
        assert_eq!(e, "malformed ERR packet: error code at byte 1: needs 2 bytes, the 2-byte packet has 1 left");
        let e = parse_err(&[0xFF, 0x15, 0x04, b'#', b'2']).unwrap_err().to_string();
        assert!(e.contains("SQL state at byte 4"), "{e}");
    }

    #[test]
    fn ok_packet_fields() {
        let p = [0x00, 0xFC, 0x10, 0x27, 0x05, 0x02, 0x00, 0x01, 0x00, b'i', b'n', b'f', b'o'];
        assert_eq!(parse_ok(&p).unwrap(), OkPacket { affected_rows: 10000, last_insert_id: 5, status: 2, warnings: 1 });
        let e = parse_ok(&[0x00, 0x00]).unwrap_err().to_string();
        assert!(e.contains("last insert id at byte 2"), "{e}");
        let e = parse_ok(&[0x03]).unwrap_err().to_string();
        assert!(e.contains("0x03 is not 0x00"), "{e}");
    }

    #[test]
    fn eof_packet_fields() {
        assert!(is_eof(&eof_packet(0x22)));
        assert_eq!(parse_eof(&eof_packet(0x22)).unwrap(), EofPacket { warnings: 0, status: 0x22 });
        assert!(!is_eof(&[0xFE, 1, 2, 3, 4, 5, 6, 7, 8]), "a 9-byte packet is a row");
        assert!(parse_eof(&[0xFE, 0]).unwrap_err().to_string().contains("warning count at byte 1"));
    }

    #[test]
    fn column_definition() {
        let c = parse_column(&column_packet("Variable_name")).unwrap();
        assert_eq!(c.name, "Variable_name");
        assert_eq!(c.table, "VARIABLES");
        assert_eq!((c.charset, c.length, c.column_type, c.flags), (33, 192, 0xFD, 1));
        let full = column_packet("Value");
        for cut in 0..full.len() {
            let e = parse_column(&full[..cut]).unwrap_err().to_string();
            assert!(e.starts_with("malformed column definition packet: "), "{e}");
            assert!(e.contains(" at byte "), "{e}");
        }
    }

    #[test]
    fn rows_with_null_and_empty_values() {
        let p = row_packet(&[Some("Uptime"), None, Some("")]);
        assert_eq!(parse_row(&p, 3).unwrap(), vec![Some("Uptime".into()), None, Some(String::new())]);
        let e = parse_row(&p, 2).unwrap_err().to_string();
        assert_eq!(e, "malformed row packet: end of a 2-column row at byte 8: 1 unexpected trailing bytes");
        let e = parse_row(&p, 4).unwrap_err().to_string();
        assert_eq!(e, "malformed row packet: value of column 4 at byte 9: needs 1 bytes, the 9-byte packet has 0 left");
    }
}
