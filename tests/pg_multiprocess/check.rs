//! What the children of `pg_multiprocess` logged, and the checks of the contract on it.
//!
//! Log lines (one `write` each, so a SIGKILL drops at most a whole last line):
//! - producers: `enqueued <job>` once the enqueue returned;
//! - pull workers: `claim <job> <token> <before> <after>` (times just before and after the
//!   claim call), `end <job> <token> <time>` before the complete call, then `ack <job>
//!   <token>` or `stale <job> <token>` with its outcome;
//! - pool workers (a `WorkerPool`, leases extended by the pool): `run <job> <time>` when
//!   the handler starts, `done <job> <time>` when it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jobspool::{JobId, JobStatus, Spool};

/// How soon after its SIGCONT a frozen pool may start a handler whose lease it confirmed
/// before the SIGSTOP (see `check`).
const WAKE_SLACK_MS: u64 = 500;

/// What the children logged.
#[derive(Default)]
pub struct Logs {
    /// Jobs whose enqueue was acknowledged.
    pub enqueued: BTreeSet<JobId>,
    /// Per job, per token: a pull worker's claim.
    claims: BTreeMap<JobId, BTreeMap<u64, Claim>>,
    /// Per job: the pool workers' runs.
    pool_runs: BTreeMap<JobId, Vec<PoolRun>>,
    /// Completions acknowledged to pull workers: job -> tokens.
    acked: BTreeMap<JobId, Vec<u64>>,
    /// Completions refused as stale.
    stale: usize,
}

#[derive(Debug)]
struct Claim {
    /// Just before the claim call (the lease cannot have started earlier).
    before: u64,
    /// Just after the claim call returned (the lease cannot end later than this + lease).
    after: u64,
    /// When the handler's run ended (before the complete call), if it did.
    end: Option<u64>,
    worker: String,
}

#[derive(Debug)]
struct PoolRun {
    start: u64,
    end: Option<u64>,
    worker: String,
}

/// A span of time in which a run certainly ran under a lease that certainly held.
#[derive(Debug)]
struct Held {
    from: u64,
    to: u64,
    what: String,
}

impl Logs {
    /// Reads every `*.log` in `dir`.
    pub fn read(dir: &Path) -> Logs {
        let mut logs = Logs::default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        for f in files {
            let worker = f.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&f).unwrap();
            // A killed child's last line may be missing, never torn: drop a partial one.
            let whole = text.rfind('\n').map_or("", |i| &text[..i]);
            for line in whole.lines() {
                logs.line(&worker, line);
            }
        }
        logs
    }

    fn line(&mut self, worker: &str, line: &str) {
        let w: Vec<&str> = line.split(' ').collect();
        let id = |s: &str| s.parse::<JobId>().unwrap();
        let n = |s: &str| s.parse::<u64>().unwrap();
        match w[0] {
            "enqueued" => {
                self.enqueued.insert(id(w[1]));
            }
            "claim" => {
                let c = Claim {
                    before: n(w[3]),
                    after: n(w[4]),
                    end: None,
                    worker: worker.to_owned(),
                };
                let prev = self.claims.entry(id(w[1])).or_default().insert(n(w[2]), c);
                assert!(prev.is_none(), "token {} handed out twice", w[2]);
            }
            "end" => {
                let c = self.claims.get_mut(&id(w[1])).unwrap();
                c.get_mut(&n(w[2])).unwrap().end = Some(n(w[3]));
            }
            "ack" => self.acked.entry(id(w[1])).or_default().push(n(w[2])),
            "stale" => self.stale += 1,
            "run" => self.pool_runs.entry(id(w[1])).or_default().push(PoolRun {
                start: n(w[2]),
                end: None,
                worker: worker.to_owned(),
            }),
            "done" => {
                let runs = self.pool_runs.get_mut(&id(w[1])).unwrap();
                let run = runs
                    .iter_mut()
                    .rev()
                    .find(|r| r.worker == worker && r.end.is_none())
                    .expect("a done line follows its run line");
                run.end = Some(n(w[2]));
            }
            other => panic!("unknown log line {other:?} of {worker}"),
        }
    }

    /// The checks. `lease_ms`: the pull workers' lease; `kills`: each killed child's name
    /// and the time just before its SIGKILL; `pauses`: the same for the child frozen for
    /// longer than its lease; `wakes`: the time just before that child's SIGCONT. Returns a
    /// one-line summary.
    pub fn check(
        &self,
        spool: &Spool,
        seed: u64,
        lease_ms: u64,
        kills: &BTreeMap<String, u64>,
        pauses: &BTreeMap<String, u64>,
        wakes: &BTreeMap<String, u64>,
    ) -> String {
        // Fencing tokens are never reused (also checked while reading).
        let mut tokens = BTreeSet::new();
        for (id, claims) in &self.claims {
            for t in claims.keys() {
                assert!(
                    tokens.insert(*t),
                    "seed {seed}: fencing token {t} reused ({id})"
                );
            }
        }
        self.check_no_two_holders(seed, lease_ms, kills, pauses);
        let mut acked = 0;
        for (id, acks) in &self.acked {
            assert_eq!(
                acks.len(),
                1,
                "seed {seed}: job {id} completed twice: {acks:?}"
            );
            let token = acks[0];
            let claims = &self.claims[id];
            let c = &claims[&token];
            // Completed under the newest lease, and while it still held.
            assert_eq!(
                claims.keys().next_back(),
                Some(&token),
                "seed {seed}: job {id} completed under token {token}, not its newest"
            );
            let end = c.end.expect("a run acknowledged has ended");
            let just_woke = |worker: &str, at: u64| {
                wakes
                    .get(worker)
                    .is_some_and(|w| at >= *w && at <= w + WAKE_SLACK_MS)
            };
            // Its lease held from the claim until the completion committed, and then the
            // job was done: no pool started it after this run ended (before the claim it
            // may have, in a process killed since).
            if let Some(r) = self
                .pool_runs
                .get(id)
                .into_iter()
                .flatten()
                // A handler whose lease the pool confirmed just before the SIGSTOP starts
                // the moment the process wakes: no lease-based queue can close that window
                // (the process may be frozen between any check and the handler's first
                // instruction). A start later than that is a pool that did not check
                // (tests/pg_multiprocess_pool.rs proves the check in isolation).
                .find(|r| r.start > end && !just_woke(&r.worker, r.start))
            {
                panic!(
                    "seed {seed}: job {id} completed by {} under token {token} (run ended at \
                     {end}) and started again by the pool of {} at {} ({})",
                    c.worker,
                    r.worker,
                    r.start,
                    pauses
                        .get(&r.worker)
                        .map_or("never frozen".into(), |p| format!(
                            "frozen at {p} for longer than its lease"
                        ))
                );
            }
            assert!(
                end <= c.after + lease_ms,
                "seed {seed}: job {id}'s completion under token {token} was accepted though \
                 its lease had expired (claimed by {} at <= {}, complete called at >= {end})",
                c.worker,
                c.after
            );
            acked += 1;
        }
        for id in &self.enqueued {
            let job = spool.get(*id).unwrap();
            assert_eq!(job.status, JobStatus::Completed, "seed {seed}: {job:?}");
            let successes = job
                .executions
                .iter()
                .filter(|e| e.success == Some(true))
                .count();
            assert_eq!(successes, 1, "seed {seed}: {job:?}");
        }
        assert!(
            acked > 0,
            "seed {seed}: no pull worker's completion was acknowledged"
        );
        assert!(
            !self.pool_runs.is_empty(),
            "seed {seed}: no pool worker ran a job"
        );
        format!(
            "{} jobs acknowledged; pull workers: {} claims, {acked} completions \
             acknowledged, {} refused as stale; pool workers: {} runs",
            self.enqueued.len(),
            self.claims.values().map(BTreeMap::len).sum::<usize>(),
            self.stale,
            self.pool_runs.values().map(Vec::len).sum::<usize>()
        )
    }

    /// No job runs in two places at once under leases that hold. For each run, the span in
    /// which it certainly ran under a lease that certainly held: a pull worker's, from the
    /// claim's return to its end (or its process's kill), cut at `lease_ms` after the claim
    /// call began (its lease was at least that long; past it, it may have expired); a pool
    /// worker's, from the handler's start to its return (or the kill; the pool extends its
    /// lease meanwhile). A frozen child's spans end when it was frozen, and none starts
    /// after (its leases may have expired meanwhile, and the pool may still start a job it
    /// had prefetched). Two such spans of one job must not overlap.
    fn check_no_two_holders(
        &self,
        seed: u64,
        lease_ms: u64,
        kills: &BTreeMap<String, u64>,
        pauses: &BTreeMap<String, u64>,
    ) {
        let killed = |w: &str| kills.get(w).copied().unwrap_or(u64::MAX);
        // When a child was killed or frozen: its spans end there.
        let stopped = |w: &str| killed(w).min(pauses.get(w).copied().unwrap_or(u64::MAX));
        // A pull worker's job is not claimed again before the lease it holds could have
        // expired, unless its process was killed (a dead process's jobs come back at once).
        for (id, claims) in &self.claims {
            for ((ta, a), (tb, b)) in claims.iter().zip(claims.iter().skip(1)) {
                assert!(
                    b.after >= a.before + lease_ms || b.after >= killed(&a.worker),
                    "seed {seed}: job {id} claimed with token {tb} by {} at <= {} while token \
                     {ta} of {} (claimed at >= {}) could still hold its {lease_ms} ms lease",
                    b.worker,
                    b.after,
                    a.worker,
                    a.before
                );
            }
        }
        let ids: BTreeSet<&JobId> = self.claims.keys().chain(self.pool_runs.keys()).collect();
        for id in ids {
            let mut held: Vec<Held> = Vec::new();
            for (t, c) in self.claims.get(id).into_iter().flatten() {
                let to = c
                    .end
                    .unwrap_or(u64::MAX)
                    .min(stopped(&c.worker))
                    .min(c.before + lease_ms);
                held.push(Held {
                    from: c.after,
                    to,
                    what: format!("token {t} of {}", c.worker),
                });
            }
            for r in self.pool_runs.get(id).into_iter().flatten() {
                held.push(Held {
                    from: r.start,
                    to: r.end.unwrap_or(u64::MAX).min(stopped(&r.worker)),
                    what: format!("the pool of {}", r.worker),
                });
            }
            held.retain(|h| h.from < h.to);
            held.sort_by_key(|h| h.from);
            for (a, b) in held.iter().zip(held.iter().skip(1)) {
                assert!(
                    b.from >= a.to,
                    "seed {seed}: job {id} ran under {} from {} to {} and under {} from {} \
                     at once, both leases holding",
                    a.what,
                    a.from,
                    a.to,
                    b.what,
                    b.from
                );
            }
        }
    }
}
