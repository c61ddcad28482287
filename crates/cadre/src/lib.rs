//! The `cadre` binary's library: command line, logging, first-run setup of
//! the data directory, and the [`Application`] that wires the store, the
//! HTTP server and the background tasks together.

pub mod admin;
pub mod app;
pub mod cli;
pub mod data_dir;
pub mod logging;

pub use app::Application;
