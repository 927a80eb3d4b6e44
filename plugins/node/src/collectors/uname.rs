//! `uname`: `node_uname_info` from `/proc/sys/kernel/*`, which holds what
//! `uname(2)` returns (the plugin cannot make the system call itself).

use super::Settings;
use crate::util::{CollectResult, Skipped, gauge, read_optional, read_value};
use wasmon_sdk::Family;

/// The machine (`uname -m`) when the kernel does not offer
/// `/proc/sys/kernel/arch` (added in Linux 6.1): first from the kernel
/// release, which distributions usually suffix with it (`6.1.0-18-amd64`,
/// `5.14.0-362.el9.x86_64`), then from the architecture this plugin was built
/// for, which inside wasm says nothing about the host ("unknown").
pub fn machine_fallback(release: &str) -> String {
    const SUFFIXES: [(&str, &str); 10] = [
        ("x86_64", "x86_64"),
        ("amd64", "x86_64"),
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("ppc64le", "ppc64le"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
        ("i686", "i686"),
        ("686", "i686"),
        ("armmp", "armv7l"),
    ];
    for (suffix, machine) in SUFFIXES {
        if release.ends_with(suffix) {
            return machine.to_string();
        }
    }
    if cfg!(target_family = "wasm") { "unknown".to_string() } else { std::env::consts::ARCH.to_string() }
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let kernel = |name: &str| read_value(&format!("/proc/sys/kernel/{name}"));
    let release = kernel("osrelease")?;
    let machine = read_optional("/proc/sys/kernel/arch").unwrap_or_else(|| machine_fallback(&release));
    let mut info = gauge("node_uname_info", "Labeled system information as provided by the uname system call.");
    info.sample(
        &[
            ("sysname", &kernel("ostype")?),
            ("release", &release),
            ("version", &kernel("version")?),
            ("machine", &machine),
            ("nodename", &kernel("hostname")?),
            ("domainname", &kernel("domainname")?),
        ],
        1.0,
    );
    Ok(vec![info])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_from_release_suffix() {
        assert_eq!(machine_fallback("6.1.0-18-amd64"), "x86_64");
        assert_eq!(machine_fallback("5.14.0-362.el9.x86_64"), "x86_64");
        assert_eq!(machine_fallback("6.1.0-rpi7-rpi-v8+arm64"), "aarch64");
        assert_eq!(machine_fallback("6.18.44-fc-v669"), std::env::consts::ARCH);
    }
}
