//! The public API: the open handle ([`Spool`](spool::Spool)), the worker pool, and the
//! contract's JSON shapes. Every door (the control socket, the CLI) goes through here.

pub(crate) mod builder;
pub mod json;
pub(crate) mod ops;
pub(crate) mod queue;
pub(crate) mod spool;
pub(crate) mod subscription;
pub(crate) mod worker;
