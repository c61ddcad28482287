//! One module per screen; [`model`] holds what they read from the API.

pub mod account;
pub mod agents;
pub mod approvals;
pub mod auth;
mod chart;
pub mod chat;
pub mod executions;
mod graph;
pub mod home;
mod model;
pub mod settings;
pub mod tasks;
