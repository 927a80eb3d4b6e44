//! `wasmon plugin new`: a plugin crate from the SDK's template
//! (`sdk/template/`, compiled into the binary), ready to build, test and load.

use std::path::{Path, PathBuf};

/// The template's files: (path in the new crate, text with `{{...}}` placeholders).
const TEMPLATE: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("../../sdk/template/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("../../sdk/template/src/lib.rs")),
    ("README.md", include_str!("../../sdk/template/README.md")),
    ("config.example.yaml", include_str!("../../sdk/template/config.example.yaml")),
    (".gitignore", include_str!("../../sdk/template/gitignore")),
];

/// The SDK of the source tree this binary was built from.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("invalid plugin name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("{} already exists; choose another name or --dir", path.display())]
    Exists { path: PathBuf },
    #[error(
        "the wasmon SDK is not at {}{hint}",
        path.display(),
        hint = if *defaulted {
            " (the source tree this binary was built from); pass --sdk PATH/TO/wasmon/sdk"
        } else {
            ""
        }
    )]
    NoSdk { path: PathBuf, defaulted: bool },
    #[error("the SDK path {} cannot be written into Cargo.toml (it is not UTF-8 or has control characters)", path.display())]
    UnusableSdkPath { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Rust keywords and names cargo refuses for a package (`cargo new` checks
/// the same ones).
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "wasmon_sdk",
];

/// Check that `name` works as a crate name, a Rust identifier (with `-` as
/// `_`), a metric-name prefix and a plugin file name `NAME.wasm`.
pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |reason: &str| Err(ScaffoldError::InvalidName { name: name.into(), reason: reason.into() });
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > 64 {
        return invalid("it is longer than 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("it must start with a lowercase letter");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
        return invalid(&format!("{c:?} is not allowed; use lowercase letters, digits, '-' and '_'"));
    }
    if name.ends_with(['-', '_']) || name.contains("--") || name.contains("__") {
        return invalid("it may not end in '-' or '_' or repeat them");
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        return invalid("it is a Rust keyword or a name cargo reserves");
    }
    Ok(())
}

/// The TOML basic-string body for `path`.
fn toml_path(path: &Path) -> Result<String, ScaffoldError> {
    let text = path.to_str().filter(|t| !t.chars().any(char::is_control));
    let text = text.ok_or_else(|| ScaffoldError::UnusableSdkPath { path: path.to_path_buf() })?;
    Ok(text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Create the crate `dir/name` from the template, depending on the SDK at
/// `sdk` (default: the one this binary was built from). Returns the crate's
/// directory.
pub fn new_plugin(name: &str, dir: &Path, sdk: Option<&Path>) -> Result<PathBuf, ScaffoldError> {
    validate_name(name)?;
    let sdk_given = sdk.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(BUILT_FROM_SDK));
    let sdk = sdk_given
        .canonicalize()
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
        .ok_or_else(|| ScaffoldError::NoSdk { path: sdk_given.clone(), defaulted: sdk.is_none() })?;
    let root = dir.join(name);
    if root.exists() || root.is_symlink() {
        return Err(ScaffoldError::Exists { path: root });
    }
    let crate_name = name.replace('-', "_");
    let substitute = |text: &str, sdk_path: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{namespace}}", &crate_name)
            .replace("{{sdk_path}}", sdk_path)
    };
    let sdk_path = toml_path(&sdk)?;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    // `create_dir` (not `_all`): fails if someone made it in the meantime.
    std::fs::create_dir(&root).map_err(write_err(&root))?;
    for (file, text) in TEMPLATE {
        let path = root.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        std::fs::write(&path, substitute(text, &sdk_path)).map_err(write_err(&path))?;
    }
    // Start from the lock file the SDK is tested with: the new crate builds
    // with the same dependency versions (offline, if they are in cargo's
    // cache); cargo drops the entries it does not need on the first build.
    if let Some(lock) = sdk.parent().map(|workspace| workspace.join("Cargo.lock"))
        && lock.is_file()
    {
        let path = root.join("Cargo.lock");
        std::fs::copy(&lock, &path).map_err(write_err(&path))?;
    }
    Ok(root)
}

/// What to do after `new_plugin`, for the terminal.
pub fn next_steps(name: &str, root: &Path) -> String {
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    format!(
        "created plugin crate {root}\n\n\
         next:\n  \
         cd {root}\n  \
         cargo test                                     # the plugin's logic, natively\n  \
         cargo build --release --target wasm32-wasip2   # the component (rustup target add wasm32-wasip2)\n  \
         wasmon plugin test {wasm}\n\n\
         then copy {wasm} as {name}.wasm into a directory of the agent's\n\
         plugins.directories and add the job in config.example.yaml to its config.\n",
        root = root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["redis", "my-exporter", "app_stats2", "a"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("My", "lowercase letter"),
            ("2fast", "lowercase letter"),
            ("a.b", "'.' is not allowed"),
            ("a b", "' ' is not allowed"),
            ("../x", "lowercase letter"),
            ("x-", "end in"),
            ("x--y", "repeat"),
            ("fn", "keyword"),
            ("test", "reserves"),
            ("wasmon-sdk", "reserves"),
        ] {
            let err = validate_name(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(validate_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn template_placeholders_are_all_known() {
        for (file, text) in TEMPLATE {
            let rest = text
                .replace("{{name}}", "")
                .replace("{{crate_name}}", "")
                .replace("{{namespace}}", "")
                .replace("{{sdk_path}}", "");
            assert!(!rest.contains("{{"), "{file} has an unknown placeholder");
        }
    }

    #[test]
    fn refuses_an_existing_directory_and_a_missing_sdk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        let err = new_plugin("taken", dir.path(), None).unwrap_err();
        assert!(matches!(err, ScaffoldError::Exists { .. }), "{err}");
        let err = new_plugin("fresh", dir.path(), Some(&dir.path().join("nowhere"))).unwrap_err().to_string();
        assert!(err.contains("the wasmon SDK is not at") && err.contains("nowhere"), "{err}");
        assert!(!dir.path().join("fresh").exists());
    }
}
