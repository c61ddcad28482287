//! The command line: `cadre serve | worker | migrate | config | openapi`.
//!
//! Data goes to standard output; progress, logs and errors to standard error.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use cadre_config::{Config, Overrides, Sources};
use clap::{Args, Parser, Subcommand};

use crate::app::{Application, Role};

/// Exit code for an invalid configuration or command line.
pub const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "cadre",
    version,
    about = "Cadre: run a workforce of AI agents under human supervision.",
    long_about = "Cadre: run a workforce of AI agents under human supervision.\n\n\
        One binary is the whole product. `cadre serve` starts the API, web UI and \
        in-process workers on an embedded SQLite database in ./cadre-data; point \
        several instances at one PostgreSQL (--database-url or CADRE_DATABASE_URL) \
        to scale out.\n\n\
        Configuration: built-in defaults < cadre.toml < CADRE_* environment < flags. \
        See `cadre config print-default` for every key."
)]
struct Cli {
    /// Configuration file [default: ./cadre.toml if present; env: CADRE_CONFIG].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Where the SQLite database, files and generated keys live
    /// [default: ./cadre-data; env: CADRE_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// PostgreSQL URL, for example postgres://user@host:5432/cadre; without it
    /// Cadre uses embedded SQLite [env: CADRE_DATABASE_URL].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API with in-process background workers (applies migrations first).
    Serve(ServeArgs),
    /// Run background workers only, for scaling work out beside `serve` instances.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the OpenAPI 3.1 description of the HTTP API to standard output.
    Openapi,
    /// Operator tasks on the database.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Recompute every audit-log hash chain (or one org's) and report the
    /// first entry that does not match. Exits 1 when a chain is broken.
    VerifyAudit {
        /// Only this organization's chain.
        #[arg(long, value_name = "ORG_ID")]
        org: Option<uuid::Uuid>,
    },
    /// Inspect and act on background jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Re-wrap every organization's data keys under the current master key
    /// and start a new data key version for each (see
    /// secrets.previous_master_keys for replacing the master key).
    RotateKeys,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env: CADRE_SERVER_BIND].
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Serve the API only; leave background work to `cadre worker` processes
    /// [env: CADRE_WORKERS_ENABLED=false].
    #[arg(long)]
    no_workers: bool,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// The newest jobs, one line each: id, state, queue, kind, attempts, last error.
    List {
        /// available, running, failed, completed, dead or cancelled.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Cancel a job that has not finished.
    Cancel { id: uuid::Uuid },
    /// Run a failed or dead job again now.
    Retry { id: uuid::Uuid },
    /// Delete finished jobs (completed, dead, cancelled) older than N days.
    Purge {
        #[arg(long, default_value_t = 7)]
        older_than_days: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the documented default cadre.toml.
    PrintDefault,
    /// Print the effective configuration after every layer is applied (secrets hidden).
    Check,
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        config_file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        bind: match &cli.command {
            Command::Serve(args) => args.bind.clone(),
            Command::Worker
            | Command::Migrate
            | Command::Config(_)
            | Command::Openapi
            | Command::Admin(_) => None,
        },
        database_url: cli.database_url.clone(),
    };
    match cli.command {
        Command::Config(ConfigCommand::PrintDefault) => print(cadre_config::DEFAULT_TOML),
        Command::Openapi => print(&format!("{}\n", cadre_server::openapi::json())),
        Command::Config(ConfigCommand::Check) => match load(&overrides) {
            Ok(config) => print(&format!("{config:#?}\n")),
            Err(code) => code,
        },
        Command::Serve(args) => run(
            &overrides,
            Job::Run(if args.no_workers {
                Role::Api
            } else {
                Role::ApiAndWorkers
            }),
        ),
        Command::Worker => run(&overrides, Job::Run(Role::Workers)),
        Command::Migrate => run(&overrides, Job::Migrate),
        Command::Admin(AdminCommand::VerifyAudit { org }) => run(&overrides, Job::VerifyAudit(org)),
        Command::Admin(AdminCommand::RotateKeys) => run(&overrides, Job::RotateKeys),
        Command::Admin(AdminCommand::Jobs(command)) => run(&overrides, Job::Jobs(command)),
    }
}

fn load(overrides: &Overrides) -> Result<Config, ExitCode> {
    Config::load(Sources::Process, overrides).map_err(|err| {
        report(&format!("{err}\n\nFix the value (in cadre.toml, the CADRE_* variable or the flag named) and start again; `cadre config print-default` documents every key."));
        ExitCode::from(EXIT_CONFIG)
    })
}

/// What a command that needs the runtime does.
enum Job {
    Run(Role),
    Migrate,
    VerifyAudit(Option<uuid::Uuid>),
    RotateKeys,
    Jobs(JobsCommand),
}

fn run(overrides: &Overrides, job: Job) -> ExitCode {
    let config = match load(overrides) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let traces = match crate::logging::init(&config.log, &config.telemetry) {
        Ok(traces) => traces,
        Err(err) => {
            report(&err.to_string());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match job {
            Job::Run(role) => {
                let role = if role == Role::ApiAndWorkers && !config.workers.enabled { Role::Api } else { role };
                {
                    let signals = cadre_runtime::ShutdownSignals::install();
                    Application::build(config, role).await?.run_until_stopped(signals).await
                }
            }
            Job::Migrate => {
                let version = crate::app::migrate_only(&config).await?;
                print(&format!("database schema is at version {version}\n"));
                Ok(())
            }
            Job::Jobs(command) => {
                let action = match command {
                    JobsCommand::List { state, queue, limit } => crate::admin::JobsAction::List { state, queue, limit },
                    JobsCommand::Cancel { id } => crate::admin::JobsAction::Cancel(id),
                    JobsCommand::Retry { id } => crate::admin::JobsAction::Retry(id),
                    JobsCommand::Purge { older_than_days } => crate::admin::JobsAction::Purge(older_than_days),
                };
                print(&crate::admin::jobs(&config, action).await?);
                Ok(())
            }
            Job::RotateKeys => {
                print(&crate::admin::rotate_keys(&config).await?);
                Ok(())
            }
            Job::VerifyAudit(org) => {
                let report = crate::admin::verify_audit(&config, org).await?;
                print(&report.text);
                if report.broken > 0 {
                    anyhow::bail!("{} audit chain(s) do not verify; the first bad entry of each is named above", report.broken);
                }
                Ok(())
            }
        }
    });
    // Spans still buffered go to the collector before the process exits.
    if let Some(traces) = traces
        && let Err(e) = traces.shutdown()
    {
        tracing::warn!(error = %e, "could not flush traces to the collector");
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "cadre stopped with an error");
            report(&format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes data to standard output.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Writes a message for the person at the terminal to standard error.
fn report(text: &str) {
    let _ignored = writeln!(std::io::stderr().lock(), "{text}");
}
