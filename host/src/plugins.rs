//! Finding plugin components by name.

use std::path::{Path, PathBuf};

/// Directories searched for `<name>.wasm`, in order: the config's
/// `plugins.directories`, `$WASMON_PLUGIN_PATH` (colon-separated), `plugins/`
/// beside the binary, the cargo build output beside the binary (a source
/// checkout), and `/usr/lib/wasmon/plugins`.
pub fn search_path(configured: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = configured.to_vec();
    if let Ok(env) = std::env::var("WASMON_PLUGIN_PATH") {
        dirs.extend(env.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(bin_dir) = exe.parent()
    {
        dirs.push(bin_dir.join("plugins"));
        // target/{debug,release}/wasmon -> target/wasm32-wasip2/release
        // (and target/debug/deps/<test> -> the same, for integration tests).
        for up in [bin_dir.parent(), bin_dir.parent().and_then(Path::parent)].into_iter().flatten() {
            dirs.push(up.join("wasm32-wasip2").join("release"));
            dirs.push(up.join("wasm32-wasip2").join("debug"));
        }
    }
    dirs.push(PathBuf::from("/usr/lib/wasmon/plugins"));
    dirs
}

/// The default alert rules a bundled plugin ships, compiled into the agent
/// so they always match its version of the plugin.
fn bundled_rules(plugin: &str) -> Option<&'static str> {
    match plugin {
        "node" => Some(include_str!("../../plugins/node/rules.yaml")),
        "mysql" => Some(include_str!("../../plugins/mysql/rules.yaml")),
        "etcd" => Some(include_str!("../../plugins/etcd/rules.yaml")),
        "nginx" => Some(include_str!("../../plugins/nginx/rules.yaml")),
        "kube-state" => Some(include_str!("../../plugins/kube-state/rules.yaml")),
        _ => None,
    }
}

/// The rule file a plugin ships, as (a name for messages, its text): the
/// bundled copy, or `<name>.rules.yaml` beside the plugin's `.wasm`.
pub fn plugin_rules(plugin: &str, configured: &[PathBuf]) -> Result<(String, String), String> {
    if let Some(text) = bundled_rules(plugin) {
        return Ok((format!("<{plugin} plugin rules>"), text.to_string()));
    }
    let wasm = resolve(plugin, configured)?;
    let path = wasm.with_extension("rules.yaml");
    std::fs::read_to_string(&path)
        .map(|text| (path.display().to_string(), text))
        .map_err(|e| format!("plugin_rules: plugin {plugin:?} ships no rules ({}: {e})", path.display()))
}

/// The component for `plugin`: a path when it looks like one, otherwise the
/// first `<name>.wasm` or `wasmon_<name>.wasm` on the search path.
pub fn resolve(plugin: &str, configured: &[PathBuf]) -> Result<PathBuf, String> {
    if plugin.contains('/') || plugin.ends_with(".wasm") {
        let path = PathBuf::from(plugin);
        return if path.is_file() { Ok(path) } else { Err(format!("plugin file {plugin} does not exist")) };
    }
    let file_stem = plugin.replace('-', "_");
    let candidates = [format!("{plugin}.wasm"), format!("wasmon_{file_stem}.wasm")];
    let dirs = search_path(configured);
    for dir in &dirs {
        for candidate in &candidates {
            let path = dir.join(candidate);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    Err(format!(
        "plugin {plugin:?} not found; looked for {} in: {}. Build the bundled plugins with \
         `cargo build --release --target wasm32-wasip2 -p wasmon-{plugin}` or set WASMON_PLUGIN_PATH",
        candidates.join(" or "),
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}

/// The plugin name a component file stands for: `nginx.wasm` and
/// `wasmon_nginx.wasm` are both `nginx`; `wasmon_kube_state.wasm` is
/// `kube-state`.
pub fn name_of(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match stem.strip_prefix("wasmon_") {
        Some(rest) => rest.replace('_', "-"),
        None => stem,
    }
}
