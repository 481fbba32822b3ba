//! The contract: jobs, events, schedules, queries and their results, errors, limits,
//! settings and the clock. Plain data and the rules about it; no storage, no threads.
//! Every other layer builds on this one, and it imports from none of them.

pub(crate) mod activity;
pub(crate) mod backoff;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod cron;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod job;
pub mod limits;
pub(crate) mod repair;
pub(crate) mod schedule;
pub(crate) mod types;
