//! The job filter of the jobs and dead-letter pages (status, queue, type, tenant, id, dedupe
//! key), read from a query string or a form, and the jobs it selects.

use crate::{Error, Job, JobId, JobStatus, ListQuery, Result, Spool};

use super::form::Form;

/// Jobs a bulk action covers at most.
pub(crate) const BULK_CAP: usize = 1000;

/// Rows per page unless `limit` says otherwise; `limit` is capped at [`MAX_ROWS`].
pub(crate) const DEFAULT_ROWS: usize = 50;
/// The largest page the dashboard asks for.
pub(crate) const MAX_ROWS: usize = 500;

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

    /// One page (at most `limit` jobs after `after`) and whether more follow. An id filter
    /// is one `get`; anything else one `list` of `limit + 1`.
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
        let mut jobs = spool.list(&self.query(self.status, after, limit + 1))?;
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        Ok((jobs, more))
    }

    /// The job with `id` if it exists, passes the filter and comes after `after`.
    fn by_id(&self, spool: &Spool, id: JobId, after: Option<JobId>) -> Result<Vec<Job>> {
        match spool.get(id) {
            Ok(j) if self.matches(&j) && after.map_or(true, |a| j.id > a) => Ok(vec![j]),
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
            for s in statuses {
                let q = self.query(Some(*s), None, BULK_CAP + 1);
                ids.extend(spool.list(&q)?.into_iter().map(|j| j.id));
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

/// The page size asked for in `limit`, within 1..=[`MAX_ROWS`] (else the default).
pub(crate) fn rows(f: &Form) -> usize {
    f.get("limit")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| (1..=MAX_ROWS).contains(n))
        .unwrap_or(DEFAULT_ROWS)
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
        assert_eq!(rows(&Form::parse("limit=501")), DEFAULT_ROWS);
        assert_eq!(rows(&Form::parse("limit=7")), 7);
    }
}
