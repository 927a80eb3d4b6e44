//! The command line: `check config`, `plugin inspect`, `plugin test`.

mod common;

use common::wasmon;

#[test]
fn check_config_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.yaml");
    std::fs::write(&file, format!(
        "scrape_configs:\n  - job_name: example\n    plugin: {}\n    static_configs: [{{targets: [a, b]}}]\n    capabilities: {{files: default}}\n    config: {{greeting: hi}}\n",
        common::plugin("wasmon_example_plugin").display()
    )).unwrap();
    let (ok, stdout, stderr) = wasmon(&["check", "config", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("OK (1 jobs, 2 static targets, 0 rules)"), "{stdout}");
}

#[test]
fn check_config_reports_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "global:\n  scrape_interval: 10s\nscrape_configs:\n  - job_name: one\n    plugin: node\n    scrape_timeout: 20s\n    static_configs: [{targets: []}]\n  - job_name: one\n    plugin: node\n    static_configs: [{targets: [a]}]\n").unwrap();
    let (ok, _, stderr) = wasmon(&["check", "config", file.to_str().unwrap()]);
    assert!(!ok);
    let path = file.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{path}:4: scrape_configs[0] (job \"one\"): scrape_timeout 20s is longer than scrape_interval 10s"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("no targets"), "{stderr}");
    assert!(stderr.contains("job_name is used by an earlier job"), "{stderr}");
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}

#[test]
fn check_config_shows_the_plugins_own_complaint() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin.yaml");
    std::fs::write(&file, format!(
        "scrape_configs:\n  - job_name: example\n    plugin: {}\n    static_configs: [{{targets: [a]}}]\n    config: {{greting: typo}}\n",
        common::plugin("wasmon_example_plugin").display()
    )).unwrap();
    let (ok, _, stderr) = wasmon(&["check", "config", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("rejected its config section") && stderr.contains("unknown field `greting`"), "{stderr}");
}

#[test]
fn check_config_reports_yaml_syntax_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("syntax.yaml");
    std::fs::write(&file, "scrape_configs:\n  - job_name: x\n    plugin: node\n    static_configs: [{targets: [a]}\n")
        .unwrap();
    let (ok, _, stderr) = wasmon(&["check", "config", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{}:5:", file.display())) || stderr.contains(&format!("{}:4:", file.display())),
        "{stderr}"
    );
}

#[test]
fn plugin_inspect_lists_capabilities() {
    let (ok, stdout, stderr) =
        wasmon(&["plugin", "inspect", common::plugin("wasmon_example_plugin").to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("name:        example"), "{stdout}");
    assert!(stdout.contains("/proc/uptime"), "{stdout}");
    let (ok, stdout, _) = wasmon(&["plugin", "inspect", common::plugin("wasmon_node").to_str().unwrap()]);
    assert!(ok);
    assert!(
        stdout.contains("name:        node") && stdout.contains("fs-stats") && stdout.contains("/proc/stat"),
        "{stdout}"
    );
}

#[test]
fn plugin_test_prints_exposition_and_timing() {
    let (ok, stdout, stderr) = wasmon(&[
        "plugin",
        "test",
        common::plugin("wasmon_example_plugin").to_str().unwrap(),
        "--config",
        "{greeting: hey}",
        "--repeat",
        "3",
    ]);
    assert!(ok, "{stderr}");
    let families = wasmon_sdk::text::parse(&stdout).expect("plugin test prints valid exposition");
    assert_eq!(families.len(), 2);
    assert!(stdout.contains("greeting=\"hey\""));
    assert!(stderr.contains("collect median") && stderr.contains("over 3 run(s)"), "{stderr}");

    let (ok, stdout, stderr) = wasmon(&["plugin", "test", common::plugin("wasmon_node").to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let families = wasmon_sdk::text::parse(&stdout).expect("node plugin output parses");
    assert!(families.iter().any(|f| f.name == "node_cpu_seconds_total"));
    assert!(families.len() > 150, "only {} families", families.len());

    let (ok, stdout, _) =
        wasmon(&["plugin", "test", common::plugin("wasmon_example_plugin").to_str().unwrap(), "--openmetrics"]);
    assert!(ok);
    assert!(stdout.ends_with("# EOF\n"));
    wasmon_sdk::text::parse_with(&stdout, wasmon_sdk::text::Format::OpenMetrics).expect("valid OpenMetrics");
}

#[test]
fn plugin_test_without_grants_reports_the_refusal() {
    let (ok, _, stderr) =
        wasmon(&["plugin", "test", common::plugin("wasmon_example_plugin").to_str().unwrap(), "--deny-all"]);
    assert!(!ok);
    assert!(stderr.contains("/proc/uptime") && stderr.contains("allowlist"), "{stderr}");
}

#[test]
fn every_config_example_in_the_repository_checks_out() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The agent's own example, checked as an operator would, plugins included.
    let (ok, stdout, stderr) = wasmon(&["check", "config", root.join("config.example.yaml").to_str().unwrap()]);
    assert!(ok, "config.example.yaml: {stderr}");
    assert!(stdout.contains("OK (1 jobs, 1 static targets, 0 rules)"), "{stdout}");
    // Each plugin's example section, handed to that plugin's own check.
    let mut plugins: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("config.example.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    plugins.sort();
    assert!(plugins.contains(&"node".to_string()), "{plugins:?}");
    for plugin in &plugins {
        let example = root.join("plugins").join(plugin).join("config.example.yaml");
        let section = std::fs::read_to_string(&example).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.yaml");
        let job = if section.contains("job_name:") {
            // A whole job (service plugins: capabilities, TLS, secrets). The
            // files it names stand for the operator's; create them so the
            // rest of the job is checked.
            let section = with_named_files_created(&section, dir.path());
            format!("scrape_configs:\n{}", section.lines().map(|l| format!("  {l}\n")).collect::<String>())
        } else if plugin.starts_with("logs-") {
            // A log processor's section, as one step of a `logs:` pipeline.
            let indented: String = section.lines().map(|l| format!("        {l}\n")).collect();
            let root = dir.path().display();
            format!(
                "logs:\n  sources: [{{name: files, include: ['{root}/*.log']}}]\n  checkpoint: {{path: '{root}/checkpoint.json'}}\n  sinks: [{{type: file, name: out, path: '{root}/out.jsonl'}}]\n  processors:\n    - plugin: {plugin}\n      config:\n{indented}"
            )
        } else {
            let indented: String = section.lines().map(|l| format!("      {l}\n")).collect();
            format!(
                "scrape_configs:\n  - job_name: {plugin}\n    plugin: {plugin}\n    static_configs: [{{targets: [localhost]}}]\n    config:\n{indented}"
            )
        };
        std::fs::write(&file, job).unwrap();
        let (ok, _, stderr) = wasmon(&["check", "config", file.to_str().unwrap()]);
        assert!(ok, "{}: {stderr}", example.display());
    }
}

/// Replace the value of every `file:` / `*_file:` key in `yaml` by a file
/// under `dir`: a fresh self-signed certificate and key for `*cert_file`,
/// `ca_file` and `key_file`, a one-line secret for the others.
fn with_named_files_created(yaml: &str, dir: &std::path::Path) -> String {
    let (cert, key) = (dir.join("test.crt"), dir.join("test.key"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=example"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl) is needed");
    assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
    let secret = dir.join("secret");
    std::fs::write(&secret, "example-secret\n").expect("write the example secret");
    yaml.lines()
        .map(|line| {
            let Some((key_part, rest)) = line.split_once("file: ") else { return line.to_string() };
            let value = rest.split(['}', ',', ' ', '#']).next().unwrap_or_default();
            let replacement = match key_part.trim_end().rsplit([' ', '{']).next().unwrap_or_default() {
                "key_" => &key,
                "ca_" | "cert_" => &cert,
                _ => &secret,
            };
            line.replacen(value, &replacement.display().to_string(), 1)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn plugin_test_grants_a_network_plugin_its_target_only_when_collecting() {
    // Nothing listens there: the mysql plugin reports the server down, and
    // its config check (which gets no network) does not trip over the grant.
    let down = format!("127.0.0.1:{}", common::free_port());
    let mysql = common::plugin("wasmon_mysql");
    let (ok, stdout, stderr) =
        wasmon(&["plugin", "test", mysql.to_str().unwrap(), "--target", &down, "--config", r#"{"user":"exporter"}"#]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("mysql_up 0"), "{stdout}");
    assert!(stderr.contains("connection refused"), "{stderr}");
}

#[test]
fn plugin_inspect_knows_kube_state_components() {
    let (ok, stdout, stderr) = wasmon(&["plugin", "inspect", common::plugin("wasmon_kube_state").to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("name:        kube-state") && stdout.contains("world:       kube-state"), "{stdout}");
}
