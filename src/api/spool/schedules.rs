//! The spool's cron schedules: creating, toggling, deleting and listing them, and firing
//! what is due. Every change wakes the scheduler thread, which sleeps until the next run.

use super::Spool;
use crate::model::error::Result;
use crate::model::schedule::{NewSchedule, ScheduledJob};

impl Spool {
    /// Creates a cron schedule (`jobs.schedule.create`).
    ///
    /// # Errors
    /// `SCHEDULE_EXISTS` (unless `replace`), `INVALID_CRON`, `INVALID_TIMEZONE`,
    /// `INVALID_ARGUMENT`.
    pub fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob> {
        let out = self.inner.backend().create_schedule(s)?;
        self.inner.engine.schedules_changed();
        Ok(out)
    }

    /// Enables or disables a schedule (`jobs.schedule.toggle`). Off clears `nextRunAt`; on
    /// recomputes it from now.
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    pub fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob> {
        let out = self.inner.backend().toggle_schedule(name, enabled)?;
        self.inner.engine.schedules_changed();
        Ok(out)
    }

    /// Deletes a schedule.
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    pub fn delete_schedule(&self, name: &str) -> Result<()> {
        self.inner.backend().delete_schedule(name)?;
        self.inner.engine.schedules_changed();
        Ok(())
    }

    /// Every schedule, by name (`jobs.schedule.list`).
    ///
    /// # Errors
    /// `CORRUPTION`, `STORAGE`.
    pub fn list_schedules(&self) -> Result<Vec<ScheduledJob>> {
        self.inner.backend().list_schedules()
    }

    /// Fires every due schedule now (the scheduler thread does this on its own; this is for
    /// handles opened without it, and for tests with a manual clock). Returns how many fired.
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn fire_due_schedules(&self) -> Result<u64> {
        self.inner.backend().fire_due_schedules()
    }
}
