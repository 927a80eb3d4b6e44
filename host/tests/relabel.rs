//! Prometheus' own relabel test cases (model/relabel/relabel_test.go) run
//! against our `Relabeler`; the data lives in `relabel/prometheus_cases.yaml`.

use serde::Deserialize;
use std::collections::BTreeMap;
use wasmon::config::RelabelConfig;
use wasmon::relabel::Relabeler;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    input: BTreeMap<String, String>,
    configs: Vec<RelabelConfig>,
    output: Option<BTreeMap<String, String>>,
    #[serde(default)]
    dropped: bool,
    /// Some(true): `Relabeler::new` must fail; Some(false): it must succeed.
    invalid: Option<bool>,
}

#[test]
fn prometheus_relabel_cases() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/relabel/prometheus_cases.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let cases: Vec<Case> = serde_yaml_ng::from_str(&text).unwrap();
    assert!(cases.len() > 30, "only {} cases loaded", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let compiled = Relabeler::new(&case.configs);
        if let Some(invalid) = case.invalid {
            match (&compiled, invalid) {
                (Ok(_), true) => failures.push(format!("{}: expected Relabeler::new to fail, got Ok", case.name)),
                (Err(e), false) => failures.push(format!("{}: expected valid config, got error {e}", case.name)),
                _ => {}
            }
            continue;
        }
        let relabeler = match compiled {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: config rejected: {e}", case.name));
                continue;
            }
        };
        assert!(case.dropped != case.output.is_some(), "{}: needs exactly one of output / dropped", case.name);
        let mut set = case.input.clone();
        let got = relabeler.apply_map(&mut set).map(|()| set);
        let expected = case.output.clone().ok_or(());
        match (&expected, &got) {
            (Err(()), Err(_)) => {}
            (Ok(want), Ok(have)) if want == have => {}
            _ => failures.push(format!(
                "{}:\n    expected {}\n    got      {}",
                case.name,
                expected.as_ref().map_or("dropped".to_string(), |m| format!("{m:?}")),
                match &got {
                    Ok(m) => format!("{m:?}"),
                    Err(step) => format!("dropped by step {step}"),
                }
            )),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
