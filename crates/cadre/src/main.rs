//! The `cadre` command. Everything it does lives in the library; this file
//! only turns the outcome into an exit code.

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: a step of the engine spends about
/// a fifth less CPU with it (docs/benchmarks.md), most of glibc's share
/// going to consolidating and unlinking free chunks across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Test builds only: crash points named by FAILPOINTS.
    #[cfg(feature = "failpoints")]
    let _crash_points = fail::FailScenario::setup();
    cadre::cli::main()
}
