//! Network capabilities: a plugin reaches its own scrape target and nothing
//! else, a silent peer cannot hold a call past its timeout, and secrets never
//! show up in what the agent logs or serves.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Agent, plugin, value};
use std::net::TcpListener;

/// A loopback listener whose connections are accepted and then held open,
/// silent, until the test ends.
fn silent_listener() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    (address, handle)
}

fn job(name: &str, target: &str, config: &str, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    plugin: {p}\n    static_configs: [{{targets: ['{target}']}}]\n    config: {config}\n    {extra}\n",
        p = plugin("wasmon_hostile").display()
    )
}

const GLOBAL: &str = "global: {scrape_interval: 1s, scrape_timeout: 500ms}\nscrape_configs:\n";

#[test]
fn tcp_reaches_the_target_and_nothing_else() {
    let (target, _a) = silent_listener();
    let (elsewhere, _b) = silent_listener();
    let yaml = [
        GLOBAL.to_string(),
        job("allowed", &target, &format!("{{mode: connect, address: '{target}'}}"), "capabilities: {tcp: true}"),
        job("elsewhere", &target, &format!("{{mode: connect, address: '{elsewhere}'}}"), "capabilities: {tcp: true}"),
        job("ungranted", &target, &format!("{{mode: connect, address: '{target}'}}"), ""),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    let metrics = agent.wait_for_scrapes(&["allowed", "elsewhere", "ungranted"], 2.0);
    assert_eq!(value(&metrics, "up", &[("job", "allowed")]), Some(1.0), "{}", agent.last_error("allowed"));
    assert_eq!(value(&metrics, "hostile_connected", &[("job", "allowed")]), Some(1.0));
    for job in ["elsewhere", "ungranted"] {
        assert_eq!(value(&metrics, "up", &[("job", job)]), Some(0.0), "{job} must not connect");
        assert!(agent.last_error(job).contains("connect 127.0.0.1:"), "{job}: {}", agent.last_error(job));
    }
    let log = agent.log_text();
    assert!(
        log.contains(&format!(
            "socket denied: TcpConnect {elsewhere}: plugins may only connect to their scrape target"
        )),
        "the refusal is logged with the address:\n{log}"
    );
}

#[test]
fn a_silent_peer_cannot_hold_a_call_past_its_timeout() {
    let (target, _held) = silent_listener();
    let yaml = [
        GLOBAL.to_string(),
        job("silent", &target, &format!("{{mode: connect-read, address: '{target}'}}"), "capabilities: {tcp: true}"),
        job("control", "control", "{mode: ok}", ""),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    // Several scrapes of the silent target end (each at its timeout) while
    // the control job keeps its schedule.
    let metrics = agent.wait_for_scrapes(&["silent"], 3.0);
    assert_eq!(value(&metrics, "up", &[("job", "silent")]), Some(0.0));
    assert_eq!(value(&metrics, "up", &[("job", "control")]), Some(1.0));
    let error = agent.last_error("silent");
    assert!(error.contains("timeout: wall-clock timeout of 500ms reached while waiting on the network"), "{error}");
    assert_eq!(
        value(&metrics, "wasmon_scrape_failures_total", &[("job", "silent"), ("reason", "timeout")]).map(|n| n >= 3.0),
        Some(true)
    );
}

#[test]
fn secrets_reach_the_plugin_and_are_masked_in_everything_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    let secret = "hunter2-WASMON-SECRET";
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let yaml = [
        GLOBAL.to_string(),
        job("secret", "db", "{mode: secret}", &format!("secrets: {{password: {{file: '{}'}}}}", file.display())),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    agent.wait_for_scrapes(&["secret"], 2.0);
    let error = agent.last_error("secret");
    assert!(error.contains("the password is <secret>"), "the plugin got the secret and it was masked: {error}");
    let log = agent.log_text();
    for line in ["the password is <secret>", "stdout: the password is <secret>", "stderr: the password is <secret>"] {
        assert!(log.contains(line), "missing {line:?} in the log:\n{log}");
    }
    let served = agent.get("/metrics") + &agent.get("/api/v1/targets") + &log;
    assert!(!served.contains(secret), "the secret leaked");
}

#[test]
fn a_missing_secret_is_reported_without_its_value() {
    let yaml = [
        GLOBAL.to_string(),
        job("secret", "db", "{mode: secret}", "secrets: {password: {env: WASMON_TEST_UNSET_SECRET_VARIABLE}}"),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    agent.wait_for_scrapes(&["secret"], 1.0);
    assert!(agent.last_error("secret").contains("the password is <none>"), "{}", agent.last_error("secret"));
    assert!(
        agent.log_text().contains("cannot read secret from environment variable WASMON_TEST_UNSET_SECRET_VARIABLE"),
        "{}",
        agent.log_text()
    );
}

/// A tiny HTTP server on loopback that answers every request with 200 and
/// the request's `Authorization` header (or `none`) as the body.
fn echo_authorization_server() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorization = "none".to_string();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) =
                    line.strip_prefix("authorization: ").or_else(|| line.strip_prefix("Authorization: "))
                {
                    authorization = value.trim().to_string();
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{authorization}",
                authorization.len()
            );
        }
    });
    address
}

#[test]
fn http_reaches_the_target_with_host_credentials_and_nothing_else() {
    let target = echo_authorization_server();
    let other = echo_authorization_server();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let basic_auth = format!(
        "capabilities: {{http: true}}\n    basic_auth: {{username: scraper, password_file: '{}'}}",
        password_file.display()
    );
    let yaml = [
        GLOBAL.to_string(),
        job("target", &target, &format!("{{mode: http-get, url: 'http://{target}/metrics'}}"), &basic_auth),
        job("elsewhere", &target, &format!("{{mode: http-get, url: 'http://{other}/metrics'}}"), &basic_auth),
        job("ungranted", &target, &format!("{{mode: http-get, url: 'http://{target}/metrics'}}"), ""),
        job(
            "own-credentials",
            &target,
            &format!("{{mode: http-get, url: 'http://{target}/', authorization: 'Bearer stolen'}}"),
            "capabilities: {http: true}",
        ),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    let metrics = agent.wait_for_scrapes(&["target", "elsewhere", "ungranted", "own-credentials"], 2.0);
    // base64("scraper:s3cret"), added by the host; the plugin never saw the password.
    assert_eq!(
        value(&metrics, "hostile_http_status", &[("job", "target"), ("body", "Basic c2NyYXBlcjpzM2NyZXQ=")]),
        Some(200.0),
        "{}",
        agent.last_error("target")
    );
    for job in ["elsewhere", "ungranted"] {
        assert_eq!(value(&metrics, "up", &[("job", job)]), Some(0.0));
        assert!(agent.last_error(job).to_lowercase().contains("denied"), "{job}: {}", agent.last_error(job));
    }
    assert_eq!(value(&metrics, "up", &[("job", "own-credentials")]), Some(0.0), "plugins may not set Authorization");
    let log = agent.log_text();
    assert!(log.contains(&format!("plugins may only reach their scrape target {target}")), "{log}");
    assert!(log.contains("does not grant the http capability"), "{log}");
    assert!(!log.contains("s3cret"), "the password leaked into the log");
}
