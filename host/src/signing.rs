//! Plugin signatures: Ed25519 keys in PEM, detached signatures beside the
//! `.wasm`, and the check the agent runs before it loads a component.
//!
//! - Private keys are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), public keys
//!   SPKI PEM (`-----BEGIN PUBLIC KEY-----`): what `openssl genpkey -algorithm
//!   ed25519` and `openssl pkey -pubout` write, so either tool can make keys.
//! - A signature is pure Ed25519 (RFC 8032, no pre-hash) over the file's
//!   bytes, the same as `openssl pkeyutl -sign -rawin`. Ed25519 is
//!   deterministic: one key and one file always give the same signature.
//! - The signature file is `FILE.wasm.sig`: the 64 signature bytes in standard
//!   base64 (RFC 4648, with padding) and a newline, 89 bytes in all. Whitespace
//!   around the base64 is ignored. From openssl:
//!   `openssl pkeyutl -sign -rawin -inkey KEY.pem -in FILE.wasm | base64 -w0 > FILE.wasm.sig`.

use crate::config::PluginsConfig;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What went wrong with a key, a signature or a signed file.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} already exists; choose another --out or remove it first", path.display())]
    Exists { path: PathBuf },
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
    #[error("cannot encode the key as PEM: {0}")]
    Encode(String),
    #[error(
        "{} is not an Ed25519 private key in PKCS#8 PEM (\"BEGIN PRIVATE KEY\", as written by \
         `wasmon plugin keygen` or `openssl genpkey -algorithm ed25519`): {reason}",
        path.display()
    )]
    NotAPrivateKey { path: PathBuf, reason: String },
    #[error(
        "{} is not an Ed25519 public key in SPKI PEM (\"BEGIN PUBLIC KEY\", the KEY.pub.pem that \
         `wasmon plugin keygen` writes, or `openssl pkey -pubout`): {reason}",
        path.display()
    )]
    NotAPublicKey { path: PathBuf, reason: String },
    #[error("{} has no signature file {}", plugin.display(), sig.display())]
    Unsigned { plugin: PathBuf, sig: PathBuf },
    #[error(
        "signature file {} is malformed: {reason} (expected one line: the 64-byte Ed25519 \
         signature in base64)",
        sig.display()
    )]
    Malformed { sig: PathBuf, reason: String },
    #[error(
        "{} is not signed by {}: {} does not verify (the file changed after signing, or another key signed it)",
        plugin.display(),
        describe_keys(keys),
        sig.display()
    )]
    Untrusted { plugin: PathBuf, sig: PathBuf, keys: Vec<PathBuf> },
}

fn describe_keys(keys: &[PathBuf]) -> String {
    match keys {
        [one] => format!("the key {}", one.display()),
        many => {
            format!("any of the keys {}", many.iter().map(|k| k.display().to_string()).collect::<Vec<_>>().join(", "))
        }
    }
}

/// Where the detached signature of `plugin` lives: `FILE.wasm` -> `FILE.wasm.sig`.
pub fn signature_path(plugin: &Path) -> PathBuf {
    let mut name = plugin.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Where `keygen --out KEY.pem` puts the public half: `KEY.pub.pem`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let stem = match private.extension() {
        Some(ext) if ext == "pem" => private.with_extension(""),
        _ => private.to_path_buf(),
    };
    let mut name = stem.into_os_string();
    name.push(".pub.pem");
    PathBuf::from(name)
}

/// A new random key pair: the private key at `out` (PKCS#8 PEM, mode 0600)
/// and the public key beside it ([`public_key_path`]). Refuses to overwrite
/// either file. Returns the public key's path.
pub fn keygen(out: &Path) -> Result<PathBuf, SigningError> {
    let public = public_key_path(out);
    for path in [out, public.as_path()] {
        if path.exists() {
            return Err(SigningError::Exists { path: path.to_path_buf() });
        }
    }
    let mut seed = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
    getrandom::fill(&mut seed).map_err(|e| SigningError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    // PKCS#8 v1, the secret alone, as openssl writes it: openssl 3.0 cannot
    // read the v2 form (with the public key) that `SigningKey` would write.
    let private = ed25519_dalek::pkcs8::KeypairBytes { secret_key: seed, public_key: None };
    seed.fill(0);
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).map_err(|e| SigningError::Encode(e.to_string()))?;
    let public_pem =
        key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| SigningError::Encode(e.to_string()))?;
    write_new(out, private_pem.as_bytes(), 0o600)?;
    write_new(&public, public_pem.as_bytes(), 0o644)?;
    Ok(public)
}

/// Create `path` (never replacing a file) with `mode`, and write `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SigningError> {
    use std::os::unix::fs::OpenOptionsExt;
    let write_err = |source| SigningError::Write { path: path.to_path_buf(), source };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(write_err)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(write_err)
}

fn read(path: &Path) -> Result<Vec<u8>, SigningError> {
    std::fs::read(path).map_err(|source| SigningError::Read { path: path.to_path_buf(), source })
}

fn read_text(path: &Path) -> Result<String, SigningError> {
    std::fs::read_to_string(path).map_err(|source| SigningError::Read { path: path.to_path_buf(), source })
}

/// Read a private key (PKCS#8 PEM).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, SigningError> {
    let text = read_text(path)?;
    SigningKey::from_pkcs8_pem(&text)
        .map_err(|e| SigningError::NotAPrivateKey { path: path.to_path_buf(), reason: e.to_string() })
}

/// Read a public key (SPKI PEM). A private key is refused with a hint, so a
/// secret never ends up in a config by mistake.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, SigningError> {
    let text = read_text(path)?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| {
        let reason = if text.contains("PRIVATE KEY-----") {
            "this is a private key; use its public half (KEY.pub.pem, or `openssl pkey -in KEY.pem -pubout`)"
                .to_string()
        } else {
            e.to_string()
        };
        SigningError::NotAPublicKey { path: path.to_path_buf(), reason }
    })
}

/// Sign the file at `plugin` with the private key at `key` and write the
/// signature beside it ([`signature_path`]), replacing an older one.
/// Returns the signature file's path.
pub fn sign_file(key: &Path, plugin: &Path) -> Result<PathBuf, SigningError> {
    let key = read_signing_key(key)?;
    let bytes = read(plugin)?;
    let signature = key.sign(&bytes);
    let sig = signature_path(plugin);
    let text = format!("{}\n", base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()));
    std::fs::write(&sig, text).map_err(|source| SigningError::Write { path: sig.clone(), source })?;
    Ok(sig)
}

/// Read a signature file ([`signature_path`]'s format).
pub fn read_signature(sig: &Path) -> Result<Signature, SigningError> {
    let malformed = |reason: String| SigningError::Malformed { sig: sig.to_path_buf(), reason };
    let bytes = read(sig)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed("not text".into()))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| malformed(format!("not base64: {e}")))?;
    let raw: [u8; ed25519_dalek::SIGNATURE_LENGTH] =
        raw.as_slice().try_into().map_err(|_| malformed(format!("{} bytes instead of 64", raw.len())))?;
    Ok(Signature::from_bytes(&raw))
}

/// Check `plugin`'s signature file against `keys` (path and key). Returns
/// the path of the key that signed it.
pub fn verify_file(plugin: &Path, keys: &[(PathBuf, VerifyingKey)]) -> Result<PathBuf, SigningError> {
    verify(plugin, None, keys)
}

/// [`verify_file`] for `bytes` already read from `plugin` (the signature
/// file is still read from beside it).
fn verify(plugin: &Path, bytes: Option<&[u8]>, keys: &[(PathBuf, VerifyingKey)]) -> Result<PathBuf, SigningError> {
    let sig = signature_path(plugin);
    if !sig.exists() {
        return Err(SigningError::Unsigned { plugin: plugin.to_path_buf(), sig });
    }
    let signature = read_signature(&sig)?;
    let read_now;
    let bytes = match bytes {
        Some(bytes) => bytes,
        None => {
            read_now = read(plugin)?;
            &read_now
        }
    };
    // `verify_strict` also refuses weak keys and malleable signatures, which
    // a signer following RFC 8032 (us, openssl) never produces.
    keys.iter().find(|(_, key)| key.verify_strict(bytes, &signature).is_ok()).map(|(path, _)| path.clone()).ok_or_else(
        || SigningError::Untrusted {
            plugin: plugin.to_path_buf(),
            sig,
            keys: keys.iter().map(|(path, _)| path.clone()).collect(),
        },
    )
}

/// Read every key of `plugins.trusted_keys`.
pub fn trusted_keys(config: &PluginsConfig) -> Result<Vec<(PathBuf, VerifyingKey)>, SigningError> {
    config.trusted_keys.iter().map(|path| read_verifying_key(path).map(|key| (path.clone(), key))).collect()
}

/// Problems of the `plugins` signing keys, for config validation.
pub fn config_problems(config: &PluginsConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if config.require_signatures && config.trusted_keys.is_empty() {
        problems.push(
            "plugins.require_signatures is true but plugins.trusted_keys is empty: no plugin could load; \
             list the public key (PEM) your plugins are signed with"
                .into(),
        );
    }
    for path in &config.trusted_keys {
        if let Err(e) = read_verifying_key(path) {
            problems.push(format!("plugins.trusted_keys: {e}"));
        }
    }
    problems
}

/// Whether the component at `path` may be loaded under `config`.
///
/// With `require_signatures`, `FILE.wasm.sig` must exist and verify under one
/// of `trusted_keys`. Without it every plugin loads; a signature that is
/// present but does not verify under the configured keys is logged.
pub fn check_plugin(path: &Path, config: &PluginsConfig) -> Result<(), String> {
    check(path, None, config)
}

/// [`check_plugin`] for the `bytes` the caller read from `path` and will
/// load: checking and loading the same bytes leaves no window in which the
/// file could be swapped after its check.
pub fn check_plugin_bytes(path: &Path, bytes: &[u8], config: &PluginsConfig) -> Result<(), String> {
    check(path, Some(bytes), config)
}

fn check(path: &Path, bytes: Option<&[u8]>, config: &PluginsConfig) -> Result<(), String> {
    if !config.require_signatures {
        if !config.trusted_keys.is_empty() && signature_path(path).exists() {
            let checked = trusted_keys(config).and_then(|keys| verify(path, bytes, &keys));
            if let Err(e) = checked {
                tracing::warn!(plugin = %path.display(), error = %e,
                    "plugin signature does not verify; loading anyway (plugins.require_signatures is off)");
            }
        }
        return Ok(());
    }
    let keys = trusted_keys(config).map_err(|e| format!("plugins.trusted_keys: {e}"))?;
    if keys.is_empty() {
        return Err(format!(
            "plugin {} not loaded: plugins.require_signatures is true but plugins.trusted_keys is empty",
            path.display()
        ));
    }
    match verify(path, bytes, &keys) {
        Ok(key) => {
            tracing::debug!(plugin = %path.display(), key = %key.display(), "plugin signature verified");
            Ok(())
        }
        Err(e @ SigningError::Unsigned { .. }) => Err(format!(
            "plugin not loaded (plugins.require_signatures is true): {e}; sign it with \
             `wasmon plugin sign --key KEY.pem {}`",
            path.display()
        )),
        Err(e) => Err(format!("plugin not loaded (plugins.require_signatures is true): {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_and_public_key_paths() {
        assert_eq!(signature_path(Path::new("/p/a.wasm")), Path::new("/p/a.wasm.sig"));
        assert_eq!(public_key_path(Path::new("k/release.pem")), Path::new("k/release.pub.pem"));
        assert_eq!(public_key_path(Path::new("release")), Path::new("release.pub.pem"));
        assert_eq!(public_key_path(Path::new("release.key")), Path::new("release.key.pub.pem"));
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1: the empty message.
        let secret: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let key = SigningKey::from_bytes(&secret);
        assert_eq!(
            hex::encode(key.verifying_key().to_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn check_plugin_bytes_checks_the_bytes_given_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        let public = keygen(&key).unwrap();
        let plugin = dir.path().join("p.wasm");
        std::fs::write(&plugin, b"original").unwrap();
        sign_file(&key, &plugin).unwrap();
        let config = PluginsConfig { require_signatures: true, trusted_keys: vec![public], ..Default::default() };
        assert_eq!(check_plugin(&plugin, &config), Ok(()));
        assert_eq!(check_plugin_bytes(&plugin, b"original", &config), Ok(()));
        // The file is still the signed one; what the caller would load is not.
        let err = check_plugin_bytes(&plugin, b"swapped!", &config).unwrap_err();
        assert!(err.contains("is not signed by the key"), "{err}");
        std::fs::write(&plugin, b"swapped!").unwrap();
        assert!(check_plugin(&plugin, &config).is_err());
    }

    #[test]
    fn malformed_signatures_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let sig = dir.path().join("x.wasm.sig");
        for (content, expected) in
            [(&b"not base64!\n"[..], "not base64"), (b"AAAA\n", "3 bytes instead of 64"), (b"\xff\xfe", "not text")]
        {
            std::fs::write(&sig, content).unwrap();
            let err = read_signature(&sig).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("x.wasm.sig"), "{err}");
        }
    }
}
