//! `collect.info_schema.innodb_cmp` and `collect.info_schema.innodb_cmpmem`:
//! InnoDB compression statistics per page size (and buffer pool instance).

use super::{CollectError, Families, expect_columns, float, query, text};
use crate::protocol::{ResultSet, Session};
use wasmon_sdk::MetricKind;

pub const CMP_QUERY: &str = "SELECT page_size, compress_ops, compress_ops_ok, compress_time, uncompress_ops, \
uncompress_time FROM information_schema.innodb_cmp";
pub const CMPMEM_QUERY: &str = "SELECT page_size, buffer_pool_instance, pages_used, pages_free, relocation_ops, \
relocation_time FROM information_schema.innodb_cmpmem";

const CMP: [(&str, &str); 5] = [
    ("compress_ops_total", "Number of times a B-tree page of the size PAGE_SIZE has been compressed."),
    ("compress_ops_ok_total", "Number of times a B-tree page of the size PAGE_SIZE has been successfully compressed."),
    ("compress_time_seconds_total", "Total time in seconds spent in attempts to compress B-tree pages."),
    ("uncompress_ops_total", "Number of times a B-tree page of the size PAGE_SIZE has been uncompressed."),
    ("uncompress_time_seconds_total", "Total time in seconds spent in uncompressing B-tree pages."),
];

const CMPMEM: [(&str, &str); 4] = [
    ("pages_used_total", "Number of blocks of the size PAGE_SIZE that are currently in use."),
    ("pages_free_total", "Number of blocks of the size PAGE_SIZE that are currently available for allocation."),
    ("relocation_ops_total", "Number of times a block of the size PAGE_SIZE has been relocated."),
    ("relocation_time_seconds_total", "Total time in seconds spent in relocating blocks."),
];

pub fn collect_cmp(session: &mut dyn Session, out: &mut Families) -> Result<(), CollectError> {
    let rs = query(session, CMP_QUERY)?;
    cmp_families(&rs, out)
}

pub fn collect_cmpmem(session: &mut dyn Session, out: &mut Families) -> Result<(), CollectError> {
    let rs = query(session, CMPMEM_QUERY)?;
    cmpmem_families(&rs, out)
}

/// The families of one `innodb_cmp` result.
pub fn cmp_families(rs: &ResultSet, out: &mut Families) -> Result<(), CollectError> {
    expect_columns(CMP_QUERY, rs, 6)?;
    for row in &rs.rows {
        let page_size = text(CMP_QUERY, rs, row, 0)?;
        let values = (1..=5).map(|i| float(CMP_QUERY, rs, row, i)).collect::<Result<Vec<_>, _>>()?;
        for ((name, help), value) in CMP.iter().zip(values) {
            let name = format!("mysql_info_schema_innodb_cmp_{name}");
            out.add(&name, help, MetricKind::Counter, &[("page_size", page_size)], value);
        }
    }
    Ok(())
}

/// The families of one `innodb_cmpmem` result. `relocation_time` is in
/// milliseconds and becomes seconds.
pub fn cmpmem_families(rs: &ResultSet, out: &mut Families) -> Result<(), CollectError> {
    expect_columns(CMPMEM_QUERY, rs, 6)?;
    for row in &rs.rows {
        let page_size = text(CMPMEM_QUERY, rs, row, 0)?;
        let buffer_pool = text(CMPMEM_QUERY, rs, row, 1)?;
        let mut values = (2..=5).map(|i| float(CMPMEM_QUERY, rs, row, i)).collect::<Result<Vec<_>, _>>()?;
        values[3] /= 1000.0;
        for ((name, help), value) in CMPMEM.iter().zip(values) {
            let name = format!("mysql_info_schema_innodb_cmpmem_{name}");
            out.add(&name, help, MetricKind::Counter, &[("page_size", page_size), ("buffer_pool", buffer_pool)], value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::tests::{render, result};

    #[test]
    fn cmp_rows() {
        let rs = result(
            &["page_size", "compress_ops", "compress_ops_ok", "compress_time", "uncompress_ops", "uncompress_time"],
            &[&["1024", "10", "9", "2", "4", "1"]],
        );
        let mut out = Families::default();
        cmp_families(&rs, &mut out).unwrap();
        assert_eq!(
            render(out),
            "\
mysql_info_schema_innodb_cmp_compress_ops_total counter [page_size=1024] 10
mysql_info_schema_innodb_cmp_compress_ops_ok_total counter [page_size=1024] 9
mysql_info_schema_innodb_cmp_compress_time_seconds_total counter [page_size=1024] 2
mysql_info_schema_innodb_cmp_uncompress_ops_total counter [page_size=1024] 4
mysql_info_schema_innodb_cmp_uncompress_time_seconds_total counter [page_size=1024] 1
"
        );
    }

    #[test]
    fn cmpmem_rows_and_milliseconds() {
        let rs = result(
            &["page_size", "buffer_pool_instance", "pages_used", "pages_free", "relocation_ops", "relocation_time"],
            &[&["16384", "0", "3", "5", "7", "1500"]],
        );
        let mut out = Families::default();
        cmpmem_families(&rs, &mut out).unwrap();
        assert_eq!(
            render(out),
            "\
mysql_info_schema_innodb_cmpmem_pages_used_total counter [page_size=16384,buffer_pool=0] 3
mysql_info_schema_innodb_cmpmem_pages_free_total counter [page_size=16384,buffer_pool=0] 5
mysql_info_schema_innodb_cmpmem_relocation_ops_total counter [page_size=16384,buffer_pool=0] 7
mysql_info_schema_innodb_cmpmem_relocation_time_seconds_total counter [page_size=16384,buffer_pool=0] 1.5
"
        );
    }

    #[test]
    fn null_or_text_where_a_number_belongs() {
        let mut rs = result(
            &["page_size", "compress_ops", "compress_ops_ok", "compress_time", "uncompress_ops", "uncompress_time"],
            &[&["1024", "x", "9", "2", "4", "1"]],
        );
        let e = cmp_families(&rs, &mut Families::default()).unwrap_err().to_string();
        assert!(e.ends_with("column compress_ops: \"x\" is not a number"), "{e}");
        rs.rows[0][0] = None;
        let e = cmp_families(&rs, &mut Families::default()).unwrap_err().to_string();
        assert!(e.ends_with("column page_size is NULL"), "{e}");
    }
}
