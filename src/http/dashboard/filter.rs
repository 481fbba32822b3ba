//! The job filter of the jobs and dead-letter pages (status, queue, type, tenant, id, dedupe
//! key), read from a query string or a form, and the jobs it selects.

use std::fmt::Write as _;

use crate::{Error, Job, JobId, JobStatus, ListQuery, Result, Spool};

use super::form::Form;
use super::html::esc;

/// Jobs a bulk action covers at most.
pub(crate) const BULK_CAP: usize = 1000;

/// Rows per page unless `limit` says otherwise; `limit` is capped at [`MAX_ROWS`].
pub(crate) const DEFAULT_ROWS: usize = 50;
/// The largest page the dashboard shows.
pub(crate) const MAX_ROWS: usize = 100;
/// Jobs read per call to the spool: pages and bulk selections are read in slices this big,
/// each job's payload, result and executions dropped as it comes (the lists show none of
/// them), so at most this many full jobs are held at once, however large their payloads.
pub(crate) const FETCH: usize = 5;

/// A job as the lists keep it: without its payload, result and executions.
fn light(mut j: Job) -> Job {
    j.payload = Vec::new();
    j.result = None;
    j.executions = Vec::new();
    j
}

/// Walks the jobs `list` answers for `q` (oldest first), from `q.after` on, [`FETCH`] at a
/// time; `each` gets every job and answers whether to go on.
pub(crate) fn walk(
    list: impl Fn(&ListQuery) -> Result<Vec<Job>>,
    mut q: ListQuery,
    mut each: impl FnMut(Job) -> bool,
) -> Result<()> {
    loop {
        q.limit = Some(FETCH);
        let batch = list(&q)?;
        let n = batch.len();
        for j in batch {
            q.after = Some(j.id);
            if !each(j) {
                return Ok(());
            }
        }
        if n < FETCH {
            return Ok(());
        }
    }
}

/// At most `limit` jobs of `q` (without their payloads; see [`FETCH`]) and whether more
/// follow.
pub(crate) fn light_page(
    list: impl Fn(&ListQuery) -> Result<Vec<Job>>,
    q: ListQuery,
    limit: usize,
) -> Result<(Vec<Job>, bool)> {
    let mut jobs = Vec::with_capacity(limit.min(MAX_ROWS) + 1);
    walk(list, q, |j| {
        jobs.push(light(j));
        jobs.len() <= limit
    })?;
    let more = jobs.len() > limit;
    jobs.truncate(limit);
    Ok((jobs, more))
}

/// A job filter. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub status: Option<JobStatus>,
    pub queue: Option<String>,
    pub kind: Option<String>,
    pub tenant: Option<String>,
    pub id: Option<JobId>,
    pub dedupe: Option<String>,
}

impl Filter {
    /// From the fields `status`, `queue`, `type`, `tenant`, `id`, `dedupe`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an unknown status or a malformed id.
    pub(crate) fn from_form(f: &Form) -> Result<Filter> {
        Ok(Filter {
            status: f.get("status").map(str::parse).transpose()?,
            queue: f.get("queue").map(str::to_owned),
            kind: f.get("type").map(str::to_owned),
            tenant: f.get("tenant").map(str::to_owned),
            id: f.get("id").map(str::parse).transpose()?,
            dedupe: f.get("dedupe").map(str::to_owned),
        })
    }

    /// Writes the filter as hidden form fields (a bulk action on everything matching it).
    pub(crate) fn hidden_inputs(&self, b: &mut String) {
        for (k, v) in self.pairs() {
            let _ = write!(
                b,
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                esc(&v)
            );
        }
    }

    /// The filter as (field, value) pairs, for links and hidden form fields.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(s) = self.status {
            v.push(("status", s.as_str().to_owned()));
        }
        for (k, x) in [
            ("queue", &self.queue),
            ("type", &self.kind),
            ("tenant", &self.tenant),
            ("dedupe", &self.dedupe),
        ] {
            if let Some(x) = x {
                v.push((k, x.clone()));
            }
        }
        if let Some(id) = self.id {
            v.push(("id", id.to_string()));
        }
        v
    }

    /// The list query of this filter with `status` (overriding the filter's).
    pub(crate) fn query(
        &self,
        status: Option<JobStatus>,
        after: Option<JobId>,
        limit: usize,
    ) -> ListQuery {
        ListQuery {
            status,
            queue: self.queue.clone(),
            kind: self.kind.clone(),
            tenant_id: self.tenant.clone(),
            dedupe_key: self.dedupe.clone(),
            after,
            limit: Some(limit),
        }
    }

    /// Whether `j` passes every field (used for the id filter, which is a direct read).
    pub(crate) fn matches(&self, j: &Job) -> bool {
        self.status.map_or(true, |s| s == j.status)
            && self.queue.as_ref().map_or(true, |q| *q == j.queue)
            && self.kind.as_ref().map_or(true, |k| *k == j.kind)
            && self
                .tenant
                .as_ref()
                .map_or(true, |t| j.tenant_id.as_ref() == Some(t))
            && self
                .dedupe
                .as_ref()
                .map_or(true, |d| j.dedupe_key.as_ref() == Some(d))
            && self.id.map_or(true, |id| id == j.id)
    }

    /// One page (at most `limit` jobs after `after`, without payloads) and whether more
    /// follow. An id filter is one `get`; anything else `list`s of [`FETCH`].
    ///
    /// # Errors
    /// What the spool reports.
    pub(crate) fn page(
        &self,
        spool: &Spool,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<(Vec<Job>, bool)> {
        if let Some(id) = self.id {
            return Ok((self.by_id(spool, id, after)?, false));
        }
        light_page(
            |q| spool.list(q),
            self.query(self.status, after, FETCH),
            limit,
        )
    }

    /// The job with `id` if it exists, passes the filter and comes after `after`.
    fn by_id(&self, spool: &Spool, id: JobId, after: Option<JobId>) -> Result<Vec<Job>> {
        match spool.get(id) {
            Ok(j) if self.matches(&j) && after.map_or(true, |a| j.id > a) => Ok(vec![light(j)]),
            Ok(_) | Err(Error::JobNotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The ids (oldest first) of at most [`BULK_CAP`] jobs among `statuses` that pass the
    /// filter and are not newer than `upto`, and whether more than that matched.
    ///
    /// # Errors
    /// What the spool reports.
    pub(crate) fn select(
        &self,
        spool: &Spool,
        statuses: &[JobStatus],
        upto: Option<JobId>,
    ) -> Result<(Vec<JobId>, bool)> {
        let mut ids: Vec<JobId> = Vec::new();
        if let Some(id) = self.id {
            ids.extend(
                self.by_id(spool, id, None)?
                    .into_iter()
                    .filter(|j| statuses.contains(&j.status))
                    .map(|j| j.id),
            );
        } else {
            // Page by page, keeping ids only: at most BULK_CAP + 1 per status.
            for s in statuses {
                let mut kept = 0;
                walk(
                    |q| spool.list(q),
                    self.query(Some(*s), None, FETCH),
                    |j| {
                        if upto.is_some_and(|u| j.id > u) {
                            return false;
                        }
                        ids.push(j.id);
                        kept += 1;
                        kept <= BULK_CAP
                    },
                )?;
            }
        }
        ids.sort();
        if let Some(u) = upto {
            ids.retain(|id| *id <= u);
        }
        let more = ids.len() > BULK_CAP;
        ids.truncate(BULK_CAP);
        Ok((ids, more))
    }
}

/// The page size asked for in `limit`, at most [`MAX_ROWS`] (0 or not a number: the
/// default).
pub(crate) fn rows(f: &Form) -> usize {
    f.get("limit")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n >= 1)
        .map_or(DEFAULT_ROWS, |n| {
            usize::try_from(n).unwrap_or(MAX_ROWS).min(MAX_ROWS)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips_fields() {
        let f = Form::parse("status=pending&queue=q&type=t&tenant=x&dedupe=d");
        let filter = Filter::from_form(&f).unwrap();
        assert_eq!(filter.status, Some(JobStatus::Pending));
        let back: Vec<(&str, String)> = filter.pairs();
        assert_eq!(back.len(), 5);
        assert!(Filter::from_form(&Form::parse("status=bogus")).is_err());
        assert!(Filter::from_form(&Form::parse("id=nope")).is_err());
        assert_eq!(
            Filter::from_form(&Form::parse("")).unwrap(),
            Filter::default()
        );
        assert_eq!(rows(&Form::parse("limit=0")), DEFAULT_ROWS);
        assert_eq!(rows(&Form::parse("limit=101")), MAX_ROWS);
        assert_eq!(
            rows(&Form::parse("limit=99999999999999999999")),
            DEFAULT_ROWS
        );
        assert_eq!(rows(&Form::parse("limit=x")), DEFAULT_ROWS);
        assert_eq!(rows(&Form::parse("limit=7")), 7);
    }
}
