//! Plugin signing: `wasmon plugin keygen/sign/verify` against openssl, and
//! `plugins.require_signatures` in `wasmon check config`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::wasmon;

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("cannot run openssl: install the Debian package `openssl` (scripts/test.sh does)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A copy of the bundled example plugin in `dir`.
fn plugin_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(common::plugin("wasmon_example_plugin"), &path).unwrap();
    path
}

/// `wasmon plugin keygen --out DIR/NAME.pem`; returns (private, public).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let (ok, stdout, stderr) = wasmon(&["plugin", "keygen", "--out", s(&private)]);
    assert!(ok, "keygen failed: {stderr}");
    let public = dir.join(format!("{name}.pub.pem"));
    assert!(stdout.contains(s(&public)), "keygen names the public key: {stdout}");
    (private, public)
}

fn sign(key: &Path, file: &Path) {
    let (ok, _, stderr) = wasmon(&["plugin", "sign", "--key", s(key), s(file)]);
    assert!(ok, "sign failed: {stderr}");
}

fn sig_of(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", file.display()))
}

/// The raw 64 bytes of a `.sig` file.
fn raw_signature(file: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(sig_of(file)).unwrap();
    base64::engine::general_purpose::STANDARD.decode(text.trim_end()).unwrap()
}

#[test]
fn keygen_sign_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path(), "release");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&private).unwrap().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(std::fs::read_to_string(&public).unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));

    let (again, _, stderr) = wasmon(&["plugin", "keygen", "--out", s(&private)]);
    assert!(!again && stderr.contains("already exists"), "keygen must not overwrite a key: {stderr}");

    let wasm = plugin_copy(dir.path(), "example.wasm");
    sign(&private, &wasm);
    let sig = std::fs::read_to_string(sig_of(&wasm)).unwrap();
    assert_eq!(sig.len(), 89, "88 base64 characters and a newline: {sig:?}");
    assert!(sig.ends_with('\n') && !sig[..88].contains(char::is_whitespace), "{sig:?}");
    assert_eq!(raw_signature(&wasm).len(), 64);

    let (ok, stdout, stderr) = wasmon(&["plugin", "verify", "--key", s(&public), s(&wasm)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("signature OK"), "{stdout}");

    let (_, other) = keygen(dir.path(), "other");
    let (ok, _, stderr) = wasmon(&["plugin", "verify", "--key", s(&other), s(&wasm)]);
    assert!(!ok, "a signature by another key must not verify");
    assert!(stderr.contains(s(&wasm)) && stderr.contains("is not signed by the key"), "{stderr}");
    // Several --key: any of them may have signed it.
    let (ok, stdout, stderr) = wasmon(&["plugin", "verify", "--key", s(&other), "--key", s(&public), s(&wasm)]);
    assert!(ok && stdout.contains(s(&public)), "{stdout}{stderr}");

    let unsigned = plugin_copy(dir.path(), "unsigned.wasm");
    let (ok, _, stderr) = wasmon(&["plugin", "verify", "--key", s(&public), s(&unsigned)]);
    assert!(!ok && stderr.contains("has no signature file"), "{stderr}");

    // A private key where a public one belongs is refused, with a hint.
    let (ok, _, stderr) = wasmon(&["plugin", "verify", "--key", s(&private), s(&wasm)]);
    assert!(!ok && stderr.contains("this is a private key"), "{stderr}");
}

#[test]
fn signatures_are_the_same_as_openssls() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path(), "ours");
    let wasm = plugin_copy(dir.path(), "example.wasm");
    sign(&private, &wasm);

    // Ed25519 is deterministic: openssl with our key gives our bytes.
    let openssl_sig = dir.path().join("openssl.sig.bin");
    let (ok, out) =
        openssl(&["pkeyutl", "-sign", "-rawin", "-inkey", s(&private), "-in", s(&wasm), "-out", s(&openssl_sig)]);
    assert!(ok, "openssl sign: {out}");
    assert_eq!(raw_signature(&wasm), std::fs::read(&openssl_sig).unwrap(), "signature differs from openssl's");

    // openssl verifies ours with our public key.
    let ours = dir.path().join("ours.sig.bin");
    std::fs::write(&ours, raw_signature(&wasm)).unwrap();
    let (ok, out) = openssl(&[
        "pkeyutl",
        "-verify",
        "-rawin",
        "-pubin",
        "-inkey",
        s(&public),
        "-in",
        s(&wasm),
        "-sigfile",
        s(&ours),
    ]);
    assert!(ok && out.contains("Signature Verified Successfully"), "openssl verify: {out}");
}

#[test]
fn openssl_keys_work_with_our_cli() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("ossl.pem");
    let public = dir.path().join("ossl.pub.pem");
    let (ok, out) = openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&private)]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&["pkey", "-in", s(&private), "-pubout", "-out", s(&public)]);
    assert!(ok, "{out}");
    let wasm = plugin_copy(dir.path(), "example.wasm");
    sign(&private, &wasm);
    let (ok, _, stderr) = wasmon(&["plugin", "verify", "--key", s(&public), s(&wasm)]);
    assert!(ok, "{stderr}");

    // A signature made by openssl alone, written in the documented format,
    // verifies with our CLI.
    let other = plugin_copy(dir.path(), "other.wasm");
    let raw = dir.path().join("raw.sig");
    let (ok, out) = openssl(&["pkeyutl", "-sign", "-rawin", "-inkey", s(&private), "-in", s(&other), "-out", s(&raw)]);
    assert!(ok, "{out}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&raw).unwrap());
    std::fs::write(sig_of(&other), format!("{b64}\n")).unwrap();
    let (ok, _, stderr) = wasmon(&["plugin", "verify", "--key", s(&public), s(&other)]);
    assert!(ok, "{stderr}");
}

/// A config with `plugins:` set to `plugins` and one job running `wasm`.
fn config(dir: &Path, name: &str, plugins: &str, wasm: &Path) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "plugins:\n{plugins}\nscrape_configs:\n  - job_name: example\n    plugin: {}\n    \
             static_configs: [{{targets: [localhost]}}]\n    capabilities: {{files: default}}\n",
            wasm.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn require_signatures_loads_only_plugins_signed_by_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let (trusted, trusted_pub) = keygen(dir.path(), "trusted");
    let (other, _) = keygen(dir.path(), "other");
    let plugins = format!("  require_signatures: true\n  trusted_keys: [{}]", trusted_pub.display());

    let unsigned = plugin_copy(dir.path(), "unsigned.wasm");
    let wrong = plugin_copy(dir.path(), "wrong.wasm");
    sign(&other, &wrong);
    let good = plugin_copy(dir.path(), "good.wasm");
    sign(&trusted, &good);
    let tampered = plugin_copy(dir.path(), "tampered.wasm");
    sign(&trusted, &tampered);
    let mut bytes = std::fs::read(&tampered).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&tampered, bytes).unwrap();
    let malformed = plugin_copy(dir.path(), "malformed.wasm");
    std::fs::write(sig_of(&malformed), "this is not a signature\n").unwrap();

    for (wasm, expected) in [
        (&unsigned, Some("has no signature file")),
        (&wrong, Some("is not signed by the key")),
        (&tampered, Some("is not signed by the key")),
        (&malformed, Some("is malformed")),
        (&good, None),
    ] {
        let file = config(dir.path(), "wasmon.yaml", &plugins, wasm);
        let (ok, stdout, stderr) = wasmon(&["check", "config", s(&file)]);
        match expected {
            None => assert!(ok && stdout.contains("OK (1 jobs"), "{} should load: {stdout}{stderr}", wasm.display()),
            Some(reason) => {
                assert!(!ok, "{} must not load: {stdout}", wasm.display());
                assert!(stderr.contains(s(wasm)) && stderr.contains(reason), "{}: {stderr}", wasm.display());
                assert!(stderr.contains("require_signatures"), "{stderr}");
            }
        }
    }

    // The running agent does not load it either: the job waits, and its
    // target shows why.
    let config = std::fs::read_to_string(config(dir.path(), "agent.yaml", &plugins, &unsigned)).unwrap();
    let agent = common::Agent::start(&config);
    let error = common::eventually(std::time::Duration::from_secs(60), || {
        Some(agent.last_error("example")).filter(|e| !e.is_empty())
    })
    .unwrap_or_else(|| panic!("no scrape error for the unsigned plugin:\n{}", agent.log_text()));
    assert!(error.contains("has no signature file") && error.contains(s(&unsigned)), "{error}");
    assert!(!agent.get("/metrics").contains("example_uptime_seconds"), "the unsigned plugin ran");
}

#[test]
fn without_require_signatures_a_bad_signature_only_warns() {
    let dir = tempfile::tempdir().unwrap();
    let (_, trusted_pub) = keygen(dir.path(), "trusted");
    let (other, _) = keygen(dir.path(), "other");
    let wrong = plugin_copy(dir.path(), "wrong.wasm");
    sign(&other, &wrong);
    let file = config(dir.path(), "wasmon.yaml", &format!("  trusted_keys: [{}]", trusted_pub.display()), &wrong);
    let (ok, stdout, stderr) = wasmon(&["check", "config", s(&file)]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("plugin signature does not verify") && stderr.contains(s(&wrong)), "{stderr}");
}

#[test]
fn bad_trusted_keys_are_config_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = plugin_copy(dir.path(), "example.wasm");

    let file = config(dir.path(), "nokeys.yaml", "  require_signatures: true", &wasm);
    let (ok, _, stderr) = wasmon(&["check", "config", s(&file)]);
    assert!(!ok && stderr.contains("plugins.trusted_keys is empty"), "{stderr}");

    let (private, _) = keygen(dir.path(), "k");
    let missing = dir.path().join("missing.pub.pem");
    let x25519 = dir.path().join("x25519.pem");
    let x25519_pub = dir.path().join("x25519.pub.pem");
    assert!(openssl(&["genpkey", "-algorithm", "x25519", "-out", s(&x25519)]).0);
    assert!(openssl(&["pkey", "-in", s(&x25519), "-pubout", "-out", s(&x25519_pub)]).0);
    let plugins = format!(
        "  require_signatures: true\n  trusted_keys: [{}, {}, {}]",
        missing.display(),
        private.display(),
        x25519_pub.display()
    );
    let file = config(dir.path(), "badkeys.yaml", &plugins, &wasm);
    let (ok, _, stderr) = wasmon(&["check", "config", s(&file)]);
    assert!(!ok, "{stderr}");
    let line = |path: &Path| stderr.lines().find(|l| l.contains(s(path))).unwrap_or_default().to_string();
    assert!(line(&missing).contains("cannot read"), "{stderr}");
    assert!(line(&private).contains("this is a private key"), "{stderr}");
    assert!(line(&x25519_pub).contains("is not an Ed25519 public key"), "{stderr}");
    assert!(stderr.contains(&format!("{}:3:", file.display())), "problems point at the trusted_keys line: {stderr}");
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}
