//! The `cadre` command. Everything it does lives in the library; this file
//! only turns the outcome into an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Test builds only: crash points named by FAILPOINTS.
    #[cfg(feature = "failpoints")]
    let _crash_points = fail::FailScenario::setup();
    cadre::cli::main()
}
