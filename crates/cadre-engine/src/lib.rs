//! The agent engine: agent definitions and templates, the durable step loop
//! that runs executions, the built-in tools and the egress filter they use,
//! approval policy, budgets and the hash-chained trace.

pub mod autorun;
pub mod checkpoint;
mod context;
pub mod egress;
pub mod engine;
mod group_commit;
pub mod live;
pub mod models;
pub mod spec;
mod steps;
pub mod templates;
pub mod tools;
pub mod trace;
pub mod work_templates;

pub use engine::{
    ADVANCE, Engine, EngineConfig, QUEUE, STATUSES, TERMINAL, TokenQuotas, advance_job,
};
