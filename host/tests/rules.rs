//! Rule files and rule unit tests, compared with Prometheus 2.42's promtool:
//! `wasmon check rules` must agree with `promtool check rules` on every file
//! of tests/rules/check, and every promtool unit test in tests/rules/unit
//! must pass (`pass_*`) or fail (`fail_*`) under both tools. Agreement on
//! the unit tests is how we show that alert states and the ALERTS /
//! ALERTS_FOR_STATE series match Prometheus' at every evaluation step.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const PROMTOOL: &str = "/usr/bin/promtool";

fn corpus(dir: &str, prefix: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.ends_with(".yml") && (prefix.is_empty() || prefix.iter().any(|pre| name.starts_with(pre)))
        })
        .collect();
    files.sort();
    files
}

fn require_promtool() {
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: install the Debian package `prometheus` (apt-get install prometheus) to compare with promtool 2.42"
    );
}

struct Outcome {
    ok: bool,
    output: String,
}

fn run(program: &str, args: &[&str], file: &Path) -> Outcome {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Outcome {
        ok: out.status.success(),
        output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    }
}

#[test]
fn check_rules_agrees_with_promtool() {
    require_promtool();
    let files = corpus("check", &[]);
    assert!(files.len() >= 25, "the check corpus needs at least 25 files, has {}", files.len());
    let mut disagree = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for f in &files {
        let p = run(PROMTOOL, &["check", "rules"], f);
        let w = run(env!("CARGO_BIN_EXE_wasmon"), &["check", "rules"], f);
        if p.ok {
            valid += 1
        } else {
            invalid += 1
        }
        if p.ok != w.ok {
            disagree.push(format!(
                "{}: promtool {} / wasmon {}\n--- promtool:\n{}--- wasmon:\n{}",
                f.display(),
                p.ok,
                w.ok,
                p.output,
                w.output
            ));
        }
    }
    println!(
        "check rules: {}/{} files agree with promtool ({valid} valid, {invalid} invalid per promtool)",
        files.len() - disagree.len(),
        files.len()
    );
    assert!(disagree.is_empty(), "exit statuses differ:\n{}", disagree.join("\n"));
}

#[test]
fn unit_tests_agree_with_promtool() {
    require_promtool();
    let passing = corpus("unit", &["pass_"]);
    let failing = corpus("unit", &["fail_"]);
    assert!(passing.len() >= 12, "need at least 12 passing unit-test files, have {}", passing.len());
    assert!(failing.len() >= 3, "need some deliberately failing unit-test files, have {}", failing.len());
    let mut problems = Vec::new();
    let mut agree = 0;
    for (files, want) in [(&passing, true), (&failing, false)] {
        for f in files {
            let p = run(PROMTOOL, &["test", "rules"], f);
            let w = run(env!("CARGO_BIN_EXE_wasmon"), &["test", "rules"], f);
            if p.ok != want {
                problems.push(format!(
                    "{}: promtool should {}:\n{}",
                    f.display(),
                    if want { "pass" } else { "fail" },
                    p.output
                ));
            }
            if w.ok != want {
                problems.push(format!(
                    "{}: wasmon should {}:\n{}",
                    f.display(),
                    if want { "pass" } else { "fail" },
                    w.output
                ));
            }
            if p.ok == want && w.ok == want {
                agree += 1;
            }
        }
    }
    println!(
        "test rules: {agree}/{} files agree with promtool ({} expected to pass, {} expected to fail)",
        passing.len() + failing.len(),
        passing.len(),
        failing.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn failure_reports_match_promtool_text() {
    require_promtool();
    // Where no templates are involved the failure report is promtool's,
    // byte for byte: same diff layout, labels and float formatting.
    for f in corpus("unit", &["fail_01", "fail_02", "fail_04", "fail_05"]) {
        let p = run(PROMTOOL, &["test", "rules"], &f);
        let w = run(env!("CARGO_BIN_EXE_wasmon"), &["test", "rules"], &f);
        let strip = |s: &str| {
            s.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("error:")).collect::<Vec<_>>().join("\n")
        };
        let (mut p, mut w) = (strip(&p.output), strip(&w.output));
        // stdout and stderr are interleaved differently; compare as sets of lines.
        let sort = |s: &mut String| {
            let mut v: Vec<&str> = s.lines().collect();
            v.sort();
            *s = v.join("\n");
        };
        sort(&mut p);
        sort(&mut w);
        assert_eq!(p, w, "{}", f.display());
    }
}
