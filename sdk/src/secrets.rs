//! Secrets the operator configured for the job (`secrets:` in the job config),
//! read by the host at call time. The host masks their values in everything
//! the plugin logs or returns as an error, but do not put them there anyway.
//!
//! In native builds (unit tests) `get("password")` reads the environment
//! variable `WASMON_SECRET_PASSWORD`.

/// The secret `name`, or `None` when the job defines no such secret.
pub fn get(name: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::wasmon::plugin::secrets::get(name)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::env::var(format!("WASMON_SECRET_{}", name.to_ascii_uppercase())).ok()
    }
}
