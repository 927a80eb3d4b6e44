//! Logging through the host. In native builds (unit tests) lines go to stderr.

use crate::bindings::wasmon::plugin::host::LogLevel;

fn write(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wasmon::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Log at debug level.
pub fn debug(message: &str) {
    write(LogLevel::Debug, message)
}
/// Log at info level.
pub fn info(message: &str) {
    write(LogLevel::Info, message)
}
/// Log at warn level.
pub fn warn(message: &str) {
    write(LogLevel::Warn, message)
}
/// Log at error level.
pub fn error(message: &str) {
    write(LogLevel::Error, message)
}
