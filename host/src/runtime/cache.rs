//! Compiled components cached on disk, keyed by the wasm's SHA-256 and the
//! engine's compatibility hash, so a restart (or a second job using the same
//! plugin) does not recompile.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

#[derive(Debug)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
    /// When set, cache misses are compiled by running this binary's hidden
    /// `__compile-component` command, so cranelift's code and heap never
    /// become resident in the long-lived agent process.
    compiler: Option<PathBuf>,
}

/// Feeds `Hash` output into SHA-256 so the key is stable across processes
/// (std's `DefaultHasher` makes no such promise).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

impl ComponentCache {
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Artifacts are loaded with `deserialize_file`, which trusts them: keep
        // the directory private to this user.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(Self { dir: dir.to_path_buf(), engine_key, compiler: None })
    }

    pub fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(wasm));
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    pub fn compile_out_of_process(&mut self, exe: PathBuf) {
        self.compiler = Some(exe);
    }

    /// The compiled component for `wasm` (read from `source`), from the cache
    /// when present.
    pub fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        source: &Path,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.path_for(wasm);
        if path.is_file() {
            match load_artifact(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached component");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        if let Some(exe) = &self.compiler {
            match compile_in_child(exe, source, &path)
                .and_then(|()| load_artifact(engine, &path).map_err(|e| e.to_string()))
            {
                Ok(component) => return Ok((component, CacheOutcome::Miss)),
                Err(e) => tracing::warn!(error = %e, "compiling in a child process failed; compiling in-process"),
            }
        }
        let component = Component::new(engine, wasm)?;
        match component.serialize() {
            Ok(bytes) => {
                if let Err(e) = write_atomically(&path, &bytes) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write component cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize compiled component"),
        }
        Ok((component, CacheOutcome::Miss))
    }
}

fn compile_in_child(exe: &Path, source: &Path, out: &Path) -> Result<(), String> {
    let output = std::process::Command::new(exe)
        .arg("__compile-component")
        .arg(source)
        .arg(out)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// The child side of out-of-process compilation: compile `source` with the
/// same engine settings and write the artifact to `out`.
pub fn compile_to_file(source: &Path, out: &Path) -> Result<(), String> {
    let engine = super::new_engine().map_err(|e| e.to_string())?;
    let wasm = std::fs::read(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let bytes = engine.precompile_component(&wasm).map_err(|e| format!("{}: {e:#}", source.display()))?;
    write_atomically(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))
}

/// Loads an artifact this process (or an earlier run of it) wrote.
#[allow(unsafe_code)]
fn load_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts its input. The file is in a directory
    // only this user can write (0700, set in `open`), it was produced by
    // `Component::serialize` of an engine with the same compatibility hash
    // (part of the file name), and it was written atomically, so it is never
    // a partial file. wasmtime also checks the header and engine settings.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
