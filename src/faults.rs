//! Fault injection for jobspool's own tests (not part of the stable API).
//!
//! Compiled only with the `failpoints` cargo feature (off by default, so a normal build has
//! none of it): [`power`] keeps a durable image of one database directory beside its live
//! files, holding only what an fsync made durable, and puts it in place of the live files
//! to simulate a power cut.

pub use crate::backend::durable::power;
pub use crate::backend::failpoint::FAILPOINTS;
