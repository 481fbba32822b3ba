//! Schedules: a stored [`ScheduledJob`] and a [`NewSchedule`] to create, with their checks.
//! Cron parsing and the next tick in a time zone are in [`crate::model::cron`].

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub(crate) use crate::model::cron::{parse_tz, Cron};
use crate::model::error::Error;
use crate::model::limits::{
    validate_max_attempts, validate_name, validate_payload, MAX_DESCRIPTION_BYTES,
};

/// A stored schedule (the contract's `ScheduledJob`, plus what the jobs it creates carry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledJob {
    /// UUID v7.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The expression as the user wrote it.
    pub cron_expression: String,
    /// IANA zone the expression is read in.
    pub timezone: String,
    /// Type of the jobs it enqueues.
    pub job_type: String,
    /// Whether it fires.
    pub enabled: bool,
    /// When it was created.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: DateTime<Utc>,
    /// Free text.
    pub description: Option<String>,
    /// When it last fired.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub last_run_at: Option<DateTime<Utc>>,
    /// When it fires next (`None` while disabled).
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub next_run_at: Option<DateTime<Utc>>,
    /// Payload of the jobs it enqueues.
    pub payload: Vec<u8>,
    /// `maxRetries` of the jobs it enqueues (`None` = the spool's default).
    pub max_attempts: Option<u32>,
    /// Queue of the jobs it enqueues (`None` = `default`).
    pub queue: Option<String>,
    /// Priority of the jobs it enqueues.
    pub priority: i32,
}

/// A schedule to create (`jobs.schedule.create`).
///
/// ```
/// use jobspool::{NewSchedule, Spool};
/// # let dir = tempfile::tempdir().unwrap();
/// let spool = Spool::open(dir.path().join("q"))?;
/// let s = spool.create_schedule(
///     NewSchedule::new("nightly-report", "0 3 * * *", "report.build")
///         .timezone("Europe/Berlin")                 // 03:00 Berlin time, DST included
///         .payload(br#"{"format":"pdf"}"#.to_vec())
///         .queue("reports")
///         .priority(5)
///         .max_attempts(2),
/// )?;
/// assert!(s.next_run_at.is_some());
/// # Ok::<(), jobspool::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSchedule {
    /// Unique name.
    pub name: String,
    /// 5-field crontab, 6-field with seconds, or a shorthand (`@daily`, ...).
    pub cron_expression: String,
    /// Type of the jobs it enqueues.
    pub job_type: String,
    /// Free text.
    pub description: Option<String>,
    /// IANA zone. Default = `"UTC"`.
    pub timezone: Option<String>,
    /// Payload of the jobs. Default = empty.
    pub payload: Vec<u8>,
    /// `maxRetries` of the jobs. Default = the spool's.
    pub max_attempts: Option<u32>,
    /// Default = true.
    pub enabled: Option<bool>,
    /// Queue of the jobs. Default = `"default"`.
    pub queue: Option<String>,
    /// Priority of the jobs. Default = 0.
    pub priority: i32,
    /// Replace a schedule of the same name instead of failing with `SCHEDULE_EXISTS`.
    pub replace: bool,
}

impl NewSchedule {
    /// A schedule named `name` enqueuing `job_type` on `cron_expression` (UTC).
    pub fn new(
        name: impl Into<String>,
        cron_expression: impl Into<String>,
        job_type: impl Into<String>,
    ) -> Self {
        NewSchedule {
            name: name.into(),
            cron_expression: cron_expression.into(),
            job_type: job_type.into(),
            ..NewSchedule::default()
        }
    }
    /// Sets the IANA zone. Default = UTC.
    #[must_use]
    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = Some(tz.into());
        self
    }
    /// Sets the payload of the jobs it enqueues.
    #[must_use]
    pub fn payload(mut self, p: impl Into<Vec<u8>>) -> Self {
        self.payload = p.into();
        self
    }
    /// Creates it disabled (or enabled).
    #[must_use]
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = Some(on);
        self
    }
    /// Sets the description.
    #[must_use]
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    /// Sets the queue of the jobs it enqueues. Default = `"default"`.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Sets the priority of the jobs it enqueues (higher runs first). Default = 0.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    /// Sets the maximum total attempts of the jobs it enqueues (1..=1,000,000, checked as
    /// for an enqueue). Default = the spool's (3).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    /// Replaces an existing schedule of the same name.
    #[must_use]
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }

    /// Checks every field; returns the parsed expression and zone.
    pub(crate) fn validate(&self, payload_limit: usize) -> Result<(Cron, Tz), Error> {
        validate_name("schedule name", &self.name)?;
        validate_name("job_type (jobType)", &self.job_type)?;
        if let Some(q) = &self.queue {
            validate_name("queue", q)?;
        }
        // The jobs it enqueues must pass enqueue's checks, or every tick would fail.
        validate_max_attempts(self.max_attempts)?;
        validate_payload("payload", &self.payload, payload_limit)?;
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES)
        {
            return Err(Error::invalid(format!(
                "description is longer than {MAX_DESCRIPTION_BYTES} bytes"
            )));
        }
        let cron = Cron::parse(&self.cron_expression)?;
        let tz = parse_tz(self.timezone.as_deref().unwrap_or("UTC"))?;
        Ok((cron, tz))
    }
}
