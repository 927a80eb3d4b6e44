//! The textfile collector on a real directory: good files are merged into the
//! output, a broken one sets `node_textfile_scrape_error` and is left out.

use wasmon_node::Node;
use wasmon_sdk::{Exporter, MetricFamily, MetricValue, Target};

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmon-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn collect_textfile(dir: &std::path::Path) -> Vec<MetricFamily> {
    let config = format!(r#"{{"collectors_enabled":["textfile"],"textfile_directory":"{}"}}"#, dir.display());
    Node::collect(Target::named("localhost"), config).expect("collect")
}

fn scrape_error(families: &[MetricFamily]) -> MetricValue {
    families.iter().find(|f| f.name == "node_textfile_scrape_error").expect("scrape_error").metrics[0].value.clone()
}

#[test]
fn good_files_are_exported() {
    let dir = scratch_dir("good");
    std::fs::write(dir.join("backup.prom"), "# HELP backup_last_success_seconds Last good backup.\n# TYPE backup_last_success_seconds gauge\nbackup_last_success_seconds{job=\"db\"} 1.7e9\n").expect("write");
    std::fs::write(dir.join("untyped.prom"), "raid_degraded 0\n").expect("write");
    std::fs::write(dir.join("ignored.txt"), "not_read 1\n").expect("write");
    let families = collect_textfile(&dir);
    assert_eq!(scrape_error(&families), MetricValue::Gauge(0.0));
    let backup = families.iter().find(|f| f.name == "backup_last_success_seconds").expect("backup family");
    assert_eq!(backup.metrics[0].value, MetricValue::Gauge(1.7e9));
    let raid = families.iter().find(|f| f.name == "raid_degraded").expect("raid family");
    assert!(raid.help.contains("untyped.prom"), "{}", raid.help);
    assert!(!families.iter().any(|f| f.name == "not_read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_file_sets_the_error() {
    let dir = scratch_dir("broken");
    std::fs::write(dir.join("ok.prom"), "fine_metric 1\n").expect("write");
    std::fs::write(dir.join("bad.prom"), "this is { not valid\n").expect("write");
    let families = collect_textfile(&dir);
    assert_eq!(scrape_error(&families), MetricValue::Gauge(1.0));
    assert!(families.iter().any(|f| f.name == "fine_metric"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_directory_sets_the_error() {
    let families = collect_textfile(std::path::Path::new("/nonexistent/wasmon-textfiles"));
    assert_eq!(scrape_error(&families), MetricValue::Gauge(1.0));
}
