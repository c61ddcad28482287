//! The `cadre` command. Everything it does lives in the library; this file
//! only turns the outcome into an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    cadre::cli::main()
}
