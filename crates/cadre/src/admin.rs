//! `cadre admin …`: operator tasks run straight against the database.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use cadre_config::Config;
use cadre_store::areas::audit::verify_chain;
use cadre_store::{ChainCheck, PLATFORM_CHAIN};
use uuid::Uuid;

/// The outcome of `cadre admin verify-audit`.
#[derive(Debug)]
pub struct AuditReport {
    /// One line per chain, for standard output.
    pub text: String,
    /// How many chains did not verify.
    pub broken: usize,
}

/// Verifies every audit chain (or one org's) and reports each.
pub async fn verify_audit(config: &Config, org: Option<Uuid>) -> Result<AuditReport> {
    let store = crate::app::open_store(config).await?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    let chains = match org {
        Some(org) => vec![org],
        None => store.audit().audit_chains().await?,
    };
    let mut report = AuditReport {
        text: String::new(),
        broken: 0,
    };
    for chain in chains {
        let rows = store.audit().audit_chain(chain).await?;
        let name = if chain == PLATFORM_CHAIN {
            "platform".to_owned()
        } else {
            format!("org {chain}")
        };
        match verify_chain(&rows) {
            ChainCheck::Valid { entries } => {
                let _ = writeln!(report.text, "{name}: valid ({entries} entries)");
            }
            ChainCheck::Broken {
                first_bad_seq,
                entries,
            } => {
                report.broken += 1;
                let _ = writeln!(
                    report.text,
                    "{name}: BROKEN at entry {first_bad_seq} ({entries} entries)"
                );
            }
        }
    }
    if report.text.is_empty() {
        report.text.push_str("no audit entries yet\n");
    }
    store.close().await;
    Ok(report)
}

/// `cadre admin rotate-keys`: re-wraps every organization's data keys under
/// the primary master key and gives each organization a new data key version.
pub async fn rotate_keys(config: &Config) -> Result<String> {
    let keys = crate::data_dir::prepare(config)?;
    let store = crate::app::open_store(config).await?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    let previous = config.secrets.previous_master_key_bytes()?;
    let keyring = cadre_identity::secrets::Keyring::new(
        secrecy::ExposeSecret::expose_secret(&keys.master_key),
        &previous,
    )?;
    let primary = keyring.primary_id().to_owned();
    let rotation = cadre_identity::secrets::Secrets::new(store.clone(), keyring)
        .rotate()
        .await?;
    store.close().await;
    Ok(format!(
        "re-wrapped {} data key(s) under master key {primary}; {} organization(s) got a new data key version\n",
        rotation.rewrapped, rotation.new_versions
    ))
}

/// What `cadre admin jobs` does.
#[derive(Debug)]
pub enum JobsAction {
    List {
        state: Option<String>,
        queue: Option<String>,
        limit: u32,
    },
    Cancel(Uuid),
    Retry(Uuid),
    Purge(u32),
}

/// `cadre admin jobs …`: returns what to print.
pub async fn jobs(config: &Config, action: JobsAction) -> Result<String> {
    use cadre_store::JobState;
    let store = crate::app::open_store(config).await?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    let now = cadre_types::time::now();
    let jobs = store.jobs();
    let out = match action {
        JobsAction::List {
            state,
            queue,
            limit,
        } => {
            let state = match state.as_deref() {
                None => None,
                Some(s) => Some(JobState::parse(s).with_context(|| {
                    format!("unknown state {s:?}; use available, running, failed, completed, dead or cancelled")
                })?),
            };
            let rows = jobs.list_jobs(state, queue.as_deref(), limit).await?;
            let mut text = String::new();
            for j in &rows {
                let _ = writeln!(
                    text,
                    "{}  {:<9}  {:<10}  {:<24}  attempts {}/{}  {}",
                    j.id,
                    j.state,
                    j.queue,
                    j.kind,
                    j.attempts,
                    j.max_attempts,
                    j.last_error.as_deref().unwrap_or("")
                );
            }
            if rows.is_empty() {
                text.push_str("no jobs\n");
            }
            text
        }
        JobsAction::Cancel(id) => {
            jobs.cancel_job(id, now)
                .await
                .with_context(|| format!("job {id} is not pending or running"))?;
            format!("cancelled {id}\n")
        }
        JobsAction::Retry(id) => {
            jobs.retry_job_now(id, now)
                .await
                .with_context(|| format!("job {id} is not failed or dead"))?;
            format!("job {id} will run again now\n")
        }
        JobsAction::Purge(days) => {
            let n = jobs
                .purge_jobs(now - time::Duration::days(i64::from(days)))
                .await?;
            format!("deleted {n} finished job(s) older than {days} day(s)\n")
        }
    };
    store.close().await;
    Ok(out)
}
