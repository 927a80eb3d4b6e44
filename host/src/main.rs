//! The `wasmon` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    match wasmon::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
