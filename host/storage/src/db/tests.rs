use super::*;
use std::fs::OpenOptions;

const S15: i64 = 15_000;
const H: i64 = 3600 * 1000;

fn opts() -> DbOptions {
    DbOptions { wal_fsync_interval: Duration::ZERO, ..DbOptions::default() }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 7)),
        ("instance", "localhost:9100".to_string()),
        ("job", "node".to_string()),
        ("i", i.to_string()),
    ])
}

/// `n` series, one sample each every 15 s from `from` for `count` scrapes.
fn fill(db: &Db, n: usize, from: i64, count: i64) {
    for k in 0..count {
        let t = from + k * S15;
        let batch: Vec<_> = (0..n).map(|i| (series(i), t, (i as i64 * 1000 + k) as f64)).collect();
        let r = db.append_batch(&batch);
        assert_eq!(r.appended, n, "{r:?}");
    }
}

fn everything(db: &Db) -> Vec<SeriesSamples> {
    db.select(&[], i64::MIN, i64::MAX)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join(WAL_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && fs::metadata(p).unwrap().len() > 0)
        .collect();
    v.sort();
    v
}

#[test]
fn db_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Db>();
}

#[test]
fn append_report_counts_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let a = series(1);
    let r = db.append_batch(&[
        (a.clone(), 100, 1.0),
        (a.clone(), 100, 1.0),
        (a.clone(), 100, 2.0),
        (a.clone(), 50, 1.0),
        (Labels::default(), 10, 1.0),
        (a.clone(), 200, crate::stale_nan()),
    ]);
    assert_eq!(
        r,
        AppendReport {
            appended: 2,
            duplicates: 1,
            new_series: 1,
            out_of_order: 1,
            conflicting: 1,
            too_old: 0,
            invalid: 1,
            wal_failed: 0
        }
    );
    assert_eq!(r.rejected(), 3);
    assert!(r.to_string().contains("out_of_order=1"));
    let got = everything(&db);
    assert_eq!(got.len(), 1);
    assert!(crate::is_stale_nan(got[0].samples[1].v));
    let mut app = db.appender();
    app.append(a, 150, 1.0);
    assert_eq!(app.commit().out_of_order, 1);
}

#[test]
fn reopen_returns_identical_data() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        fill(&db, 20, 0, 300);
        everything(&db)
    };
    assert_eq!(before.len(), 20);
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    assert!(db.stats().replay.is_clean());
    assert_eq!(everything(&db), before);
    assert_eq!(db.stats().head_samples, 6000);
    // Appending continues where it left off, with the same series ids.
    fill(&db, 21, 300 * S15, 1);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(everything(&db).len(), 21);
    assert_eq!(everything(&db)[0].samples.len(), 301);
}

#[test]
fn torn_wal_tail_keeps_everything_before_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        fill(&db, 10, 0, 50);
    }
    let last = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    OpenOptions::new().write(true).open(&last).unwrap().set_len(len - 20).unwrap();

    let db = Db::open(dir.path(), opts()).unwrap();
    let st = db.stats();
    assert!(st.replay.dropped_bytes > 0 && st.replay.dropped_records > 0, "{:?}", st.replay);
    // Only the last batch (one sample per series) was torn.
    let got = everything(&db);
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|s| s.samples.len() == 49), "{:?}", got.iter().map(|s| s.samples.len()).collect::<Vec<_>>());
    drop(db);
    assert!(Db::open(dir.path(), opts()).unwrap().stats().replay.is_clean(), "the cut is persistent");
}

#[test]
fn flipped_bytes_mid_segment_keep_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let small = DbOptions { wal_segment_size: 4096, ..opts() };
    {
        let db = Db::open(dir.path(), small.clone()).unwrap();
        fill(&db, 10, 0, 200);
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 4, "{segs:?}");
    let target = &segs[2];
    let mut bytes = fs::read(target).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b ^= 0xa5;
    }
    fs::write(target, &bytes).unwrap();

    let db = Db::open(dir.path(), small).unwrap();
    let r = db.stats().replay;
    assert!(r.dropped_bytes > 0 && r.dropped_records > 0 && r.dropped_segments >= segs.len() - 3, "{r:?}");
    // Batches are whole records, so the head holds batches 0..k exactly.
    let got = everything(&db);
    let k = got[0].samples.len();
    assert!(k > 0 && k < 200);
    let want: Vec<i64> = (0..k as i64).map(|i| i * S15).collect();
    assert_eq!(got.len(), 10);
    for s in &got {
        assert_eq!(s.samples.iter().map(|x| x.t).collect::<Vec<_>>(), want, "{}", s.labels);
    }
    // The two segments before the damaged one hold ~33 batches (124 B) each.
    assert!(k >= 66, "k={k}");
}

#[test]
fn block_cut_and_reopen_give_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    // 3.5 h of data: the first 2 h range is cut.
    fill(&db, 30, 0, 3 * 240 + 120);
    let before = everything(&db);
    let ranged = db.select(&[Matcher::equal("i", "3")], H, 2 * H + 10 * S15);
    let m = db.maintenance(4 * H).unwrap();
    assert_eq!(m.blocks_written.len(), 1);
    let b = &m.blocks_written[0];
    assert_eq!((b.mint, b.maxt, b.num_series, b.num_samples), (0, 2 * H, 30, 30 * 480));
    let st = db.stats();
    assert_eq!(st.head_samples, 30 * (840 - 480));
    assert!(st.head_min_time.unwrap() >= 2 * H);
    assert_eq!(everything(&db), before);
    assert_eq!(db.select(&[Matcher::equal("i", "3")], H, 2 * H + 10 * S15), ranged);
    assert_eq!(db.series(&[Matcher::regex("i", "1.*").unwrap()], 0, H).len(), 11);
    assert_eq!(db.label_values("i", &[], 0, H).len(), 30);
    // Samples in the persisted range are now refused.
    assert_eq!(db.append_batch(&[(series(0), H, 1.0)]).too_old, 1);
    drop(db);

    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().blocks.len(), 1);
    assert_eq!(db.stats().head_samples, 30 * (840 - 480));
    assert_eq!(everything(&db), before);
    assert_eq!(db.dump(&[Matcher::equal("i", "3")], H, 2 * H + 10 * S15), ranged);
}

#[test]
fn read_only_open_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 5, 0, 3 * 240 + 120);
    db.maintenance(4 * H).unwrap();
    fill(&db, 5, (3 * 240 + 120) * S15, 1);
    let before = everything(&db);
    let seg = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    // A torn tail, as a live agent's half-written record would look.
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 3).unwrap();
    let listing = |d: &Path| {
        let mut v: Vec<_> = fs::read_dir(d.join(WAL_DIR)).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.sort();
        v
    };
    let files = listing(dir.path());

    let ro = Db::open_read_only(dir.path(), opts()).unwrap();
    assert_eq!(ro.stats().blocks.len(), 1);
    assert_eq!(ro.stats().replay.dropped_records, 1);
    let got = everything(&ro);
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].samples.len(), before[0].samples.len() - 1, "only the torn batch is missing");
    assert_eq!(ro.append_batch(&[(series(0), 10 * H, 1.0)]).wal_failed, 1);
    assert!(matches!(ro.maintenance(10 * H), Err(StorageError::ReadOnly)));
    ro.close().unwrap();
    drop(ro);
    assert_eq!(listing(dir.path()), files);
    assert_eq!(fs::metadata(&seg).unwrap().len(), len - 3);
    assert!(Db::open_read_only(&dir.path().join("nope"), opts()).unwrap().stats().blocks.is_empty());
}

#[test]
fn wal_is_truncated_after_a_cut_and_still_knows_live_series() {
    let dir = tempfile::tempdir().unwrap();
    let o = DbOptions { wal_segment_size: 64 << 10, ..opts() };
    let db = Db::open(dir.path(), o.clone()).unwrap();
    fill(&db, 20, 0, 5 * 240);
    let wal_before = db.stats().wal_bytes;
    let m = db.maintenance(5 * H).unwrap();
    assert_eq!(m.blocks_written.len(), 1);
    assert!(m.wal_segments_removed > 0, "{m:?}");
    assert!(db.stats().wal_bytes < wal_before);
    let before = everything(&db);
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(everything(&db), before);
    assert_eq!(db.stats().head_series, 20);
    // A series defined before the checkpoint keeps its id: appends still
    // land in the same series after reopening.
    fill(&db, 20, 5 * 240 * S15, 1);
    assert_eq!(db.select(&[Matcher::equal("i", "0")], 0, i64::MAX).len(), 1);
}

#[test]
fn a_wal_hold_keeps_segments_until_moved_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: the compressed WAL of this data must span several.
    let o = DbOptions { wal_segment_size: 16 << 10, ..opts() };
    let db = Db::open(dir.path(), o).unwrap();
    let first = db.wal_current_segment().unwrap();
    let hold = db.hold_wal(first);
    assert_eq!(db.newest_sample_time(), None);
    fill(&db, 20, 0, 5 * 240);
    assert_eq!(db.newest_sample_time(), Some((5 * 240 - 1) * S15));
    let listed = |db: &Db| wal::list(&db.wal_dir()).unwrap().segments.len();
    let segments_before = listed(&db);
    let m = db.maintenance(5 * H).unwrap();
    assert_eq!(m.blocks_written.len(), 1);
    assert_eq!(m.wal_segments_removed, 0, "held segments must stay");
    assert!(listed(&db) >= segments_before);
    // Moving the hold lets the next truncation remove segments before it.
    hold.keep_from(first + 3);
    fill(&db, 20, 5 * 240 * S15, 2 * 240);
    let m = db.maintenance(7 * H).unwrap();
    assert_eq!(m.wal_segments_removed, 3, "{m:?}");
    drop(hold);
    fill(&db, 20, 7 * 240 * S15, 2 * 240);
    let m = db.maintenance(9 * H).unwrap();
    assert!(m.wal_segments_removed > 0, "{m:?}");
}

#[test]
fn retention_drops_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let o = DbOptions { retention_time: Duration::from_secs(5 * 3600), ..opts() };
    let db = Db::open(dir.path(), o).unwrap();
    fill(&db, 5, 0, 240 * 9);
    let m = db.maintenance(9 * H).unwrap();
    assert_eq!(m.blocks_written.len(), 3, "{m:?}");
    // Blocks end at 2 h, 4 h, 6 h; cutoff 9 h − 5 h = 4 h.
    assert_eq!(m.blocks_deleted.iter().map(|b| b.maxt).collect::<Vec<_>>(), vec![2 * H, 4 * H]);
    assert_eq!(db.stats().blocks.len(), 1);
    assert!(db.select(&[], 0, 4 * H - 1).is_empty());
    assert!(!dir.path().join(BLOCKS_DIR).join(format!("0-{}", 2 * H)).exists());
    drop(db);

    let sized = DbOptions { retention_size: 1, ..opts() };
    let db = Db::open(dir.path(), sized).unwrap();
    assert_eq!(db.stats().blocks.len(), 1);
    let m = db.maintenance(9 * H).unwrap();
    assert_eq!(m.blocks_deleted.len(), 1);
    assert!(db.stats().blocks.is_empty());
}

#[test]
fn concurrent_appends_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for k in 0..200 {
                    let batch: Vec<_> = (0..10).map(|i| (series(w * 10 + i), k * S15, k as f64)).collect();
                    assert_eq!(db.append_batch(&batch).appended, 10);
                    let _ = db.select(&[Matcher::equal("job", "node")], 0, i64::MAX);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(db.stats().head_samples, 40 * 200);
    db.flush_wal().unwrap();
}

#[test]
fn merge_deduplicates_overlapping_sources() {
    let l = series(1);
    let s = |ts: &[i64]| ts.iter().map(|&t| Sample { t, v: t as f64 }).collect::<Vec<_>>();
    let merged = merge(vec![
        vec![SeriesSamples { labels: l.clone(), samples: s(&[1, 2, 3]) }],
        vec![
            SeriesSamples { labels: l.clone(), samples: s(&[3, 4]) },
            SeriesSamples { labels: series(2), samples: s(&[9]) },
        ],
    ]);
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].samples, s(&[1, 2, 3, 4]));
}

/// Measured: 1.21 B/sample for 10k series × 120 samples (chunks 0.97,
/// index 0.24). Mix: 40 % near-constant gauges, 30 % counters growing by
/// 0–9 per scrape, 30 % gauges changing every ~10 scrapes; 15 s spacing.
#[test]
fn bytes_per_sample_of_a_realistic_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions { wal_fsync_interval: Duration::from_secs(60), ..DbOptions::default() })
        .unwrap();
    let n = 10_000usize;
    let labels: Vec<Labels> = (0..n)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 100)),
                ("instance", "localhost:9100".to_string()),
                ("job", "node".to_string()),
                ("device", format!("dev{}", i / 100)),
            ])
        })
        .collect();
    let mut values: Vec<f64> = (0..n).map(|i| (i * 37 % 1000) as f64).collect();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let t0 = 1_700_000_000_000i64.div_euclid(2 * H) * 2 * H;
    for k in 0..120i64 {
        let batch: Vec<(Labels, i64, f64)> = (0..n)
            .map(|i| {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = rng >> 33;
                match i % 10 {
                    0..=3 if k == 60 && r.is_multiple_of(4) => values[i] += 1.0,
                    0..=3 => {}
                    4..=6 => values[i] += (r % 10) as f64,
                    _ if r.is_multiple_of(10) => {
                        values[i] = ((values[i] + (r % 200) as f64 / 100.0 - 1.0) * 100.0).round() / 100.0
                    }
                    _ => {}
                }
                (labels[i].clone(), t0 + k * S15, values[i])
            })
            .collect();
        db.append_batch(&batch);
    }
    let full = db.stats();
    println!(
        "head with 120 samples/series: ~{} B/series ({} B/sample incl. overhead)",
        full.head_memory_bytes / n,
        full.head_memory_bytes as u64 / full.head_samples
    );
    // One late sample stretches the head past 1.5 block ranges.
    db.append_batch(&[(labels[0].clone(), t0 + 4 * H, 0.0)]);
    let m = db.maintenance(t0 + 4 * H).unwrap();
    let b = &m.blocks_written[0];
    assert_eq!(b.num_samples, 120 * n as u64);
    let bps = b.bytes_per_sample();
    let bdir = dir.path().join(BLOCKS_DIR).join(format!("{}-{}", b.mint, b.maxt));
    let size = |f: &str| fs::metadata(bdir.join(f)).unwrap().len() as f64 / b.num_samples as f64;
    println!(
        "block: {} series, {} samples, {} bytes, {bps:.3} B/sample (chunks {:.3}, index {:.3})",
        b.num_series,
        b.num_samples,
        b.bytes,
        size("chunks"),
        size("index")
    );
    assert!(bps <= 1.3, "{bps}");
    let st = db.stats();
    assert_eq!(st.bytes_per_sample, bps);
    assert_eq!(st.blocks[0].name, format!("{}-{}", t0, t0 + 2 * H));
    println!("head after cut: {} series, ~{} bytes", st.head_series, st.head_memory_bytes);
}
