//! Group commit for enqueues: callers that enqueue at the same time share one statement, so
//! under `Immediate` one commit (one WAL flush) answers all of them; under `Buffered`, where
//! commits do not wait for the flush, they share the statement's work.
//!
//! Each caller joins a line. A caller that arrives while fewer than [`LEADERS`] statements
//! are in flight leads one at once, with its own jobs. Otherwise it waits in line: when a
//! statement ends, its leader takes the callers at the front of the line as the next
//! statement's batch and hands it to the first of them, who sends their jobs in one
//! statement, then answers each caller with its own jobs. Nobody waits for a batch to fill:
//! the line grows only while statements are in flight, so one producer alone pays nothing
//! and sixteen share each commit. Two statements in flight let one execute while the
//! other waits for its WAL flush (the server flushes both at once when they meet).
//!
//! A statement is atomic, so a combined one keeps every caller's batch all-or-nothing; it
//! fails only for reasons common to all its callers (the server, the connection), since
//! every job was validated before it joined.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::tx::Done;
use crate::model::error::{Error, Result};
use crate::model::job::NewJob;
use crate::model::types::Enqueued;

/// Statements in flight at once.
const LEADERS: usize = 2;
/// Most jobs one combined statement takes from the line (a caller's own batch may be larger:
/// it goes alone).
const MAX_JOBS: usize = 1024;
/// Most payload bytes one combined statement takes from the line (likewise).
const MAX_BYTES: usize = 8 << 20;

/// See the module docs.
#[derive(Default)]
pub(super) struct Combiner {
    line: Mutex<Line>,
}

#[derive(Default)]
struct Line {
    waiting: VecDeque<Arc<Slot>>,
    /// Statements in flight (or about to be): at most [`LEADERS`]. While it is below that,
    /// nobody waits in line.
    leaders: usize,
}

/// One caller in line.
struct Slot {
    jobs: Mutex<Vec<NewJob>>,
    n: usize,
    bytes: usize,
    answer: Mutex<Answer>,
    cv: Condvar,
}

enum Answer {
    Wait,
    /// This caller leads a statement with these callers' jobs (itself first).
    Lead(Vec<Arc<Slot>>),
    Done(Result<Vec<Enqueued>>),
}

impl Slot {
    fn set(&self, a: Answer) {
        *self.answer.lock() = a;
        self.cv.notify_one();
    }
}

impl Combiner {
    /// Enqueues `jobs` (validated, at least one), combined with other callers' jobs:
    /// `run` enqueues the jobs of one statement, `after` takes what its commit leaves for
    /// the observer. Returns this caller's jobs, in its order.
    pub fn enqueue(
        &self,
        jobs: Vec<NewJob>,
        run: impl Fn(Vec<NewJob>) -> Result<(Vec<Enqueued>, Done)>,
        after: impl Fn(Done),
    ) -> Result<Vec<Enqueued>> {
        let slot = Arc::new(Slot {
            n: jobs.len(),
            bytes: jobs.iter().map(|j| j.payload.len()).sum(),
            jobs: Mutex::new(jobs),
            answer: Mutex::new(Answer::Wait),
            cv: Condvar::new(),
        });
        let batch = {
            let mut line = self.line.lock();
            if line.leaders < LEADERS {
                line.leaders += 1;
                Some(vec![slot.clone()])
            } else {
                line.waiting.push_back(slot.clone());
                None
            }
        };
        let batch = match batch {
            Some(b) => b,
            None => {
                let mut a = slot.answer.lock();
                loop {
                    match std::mem::replace(&mut *a, Answer::Wait) {
                        Answer::Wait => slot.cv.wait(&mut a),
                        Answer::Lead(b) => break b,
                        Answer::Done(r) => return r,
                    }
                }
            }
        };
        let mut lead = Leading {
            combiner: self,
            batch,
            handed_on: false,
        };
        debug_assert!(Arc::ptr_eq(&lead.batch[0], &slot));
        let mut jobs = Vec::with_capacity(lead.batch.iter().map(|s| s.n).sum());
        for s in &lead.batch {
            jobs.append(&mut s.jobs.lock());
        }
        let result = run(jobs);
        // The next statement starts while this one's callers are answered.
        lead.hand_on();
        match result {
            Ok((mut out, done)) => {
                after(done);
                // Each caller's jobs, from the back; what is left is this caller's.
                while lead.batch.len() > 1 {
                    if let Some(s) = lead.batch.pop() {
                        let theirs = out.split_off(out.len().saturating_sub(s.n));
                        s.set(Answer::Done(Ok(theirs)));
                    }
                }
                lead.batch.clear();
                Ok(out)
            }
            Err(e) => {
                while lead.batch.len() > 1 {
                    if let Some(s) = lead.batch.pop() {
                        s.set(Answer::Done(Err(shared_error(&e))));
                    }
                }
                lead.batch.clear();
                Err(e)
            }
        }
    }

    /// The callers of the next statement, from the front of the line: at least one (when
    /// any waits), then while they fit in [`MAX_JOBS`] and [`MAX_BYTES`].
    fn take_batch(line: &mut Line) -> Vec<Arc<Slot>> {
        let mut batch = Vec::new();
        let (mut n, mut bytes) = (0, 0);
        while let Some(s) = line.waiting.front() {
            if !batch.is_empty() && (n + s.n > MAX_JOBS || bytes + s.bytes > MAX_BYTES) {
                break;
            }
            n += s.n;
            bytes += s.bytes;
            batch.extend(line.waiting.pop_front());
        }
        batch
    }
}

/// The error a combined statement's other callers get: `SHUTTING_DOWN`, or `STORAGE` with
/// the same message.
fn shared_error(e: &Error) -> Error {
    match e {
        Error::ShuttingDown => Error::ShuttingDown,
        other => Error::Storage {
            context: format!(
                "{} (enqueued in one statement with other callers' jobs)",
                other.message()
            ),
            source: None,
        },
    }
}

/// The lead of one statement: handed on, and its other callers answered, even if
/// something panics on the way.
struct Leading<'a> {
    combiner: &'a Combiner,
    /// The statement's callers not answered yet (this one first).
    batch: Vec<Arc<Slot>>,
    handed_on: bool,
}

impl Leading<'_> {
    /// The callers at the front of the line make the next statement, led by the first of
    /// them; or, when nobody waits, one statement fewer is in flight.
    fn hand_on(&mut self) {
        if std::mem::replace(&mut self.handed_on, true) {
            return;
        }
        let mut line = self.combiner.line.lock();
        let next = Combiner::take_batch(&mut line);
        match next.first().cloned() {
            Some(first) => first.set(Answer::Lead(next)),
            None => line.leaders -= 1,
        }
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        // Only after a panic: the others are told, and the lead goes on.
        for s in self.batch.iter().skip(1) {
            s.set(Answer::Done(Err(Error::Storage {
                context: "the enqueue combined with this one was interrupted; nothing of it \
                          is known to be committed: check with `get`, then enqueue again"
                    .into(),
                source: None,
            })));
        }
        self.hand_on();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::mpsc;

    use super::*;
    use crate::backend::rules;
    use crate::model::job::JobId;

    /// What a test's `run` does with one statement's jobs.
    type Runs = Mutex<Vec<Vec<String>>>;

    /// Enqueues as a statement would, recording the payloads of each statement.
    fn run_ok(runs: &Runs, ids: &AtomicU32, jobs: Vec<NewJob>) -> Result<(Vec<Enqueued>, Done)> {
        runs.lock().push(
            jobs.iter()
                .map(|j| String::from_utf8(j.payload.clone()).unwrap())
                .collect(),
        );
        let out = jobs
            .into_iter()
            .map(|nj| {
                let n = ids.fetch_add(1, Ordering::SeqCst) + 1;
                let mut id = [0u8; 16];
                id[12..].copy_from_slice(&n.to_be_bytes());
                Enqueued {
                    job: rules::new_job(nj, JobId::from_bytes(id), 0, 3),
                    deduplicated: false,
                }
            })
            .collect();
        Ok((out, Done::default()))
    }

    fn jobs(names: &[&str]) -> Vec<NewJob> {
        names
            .iter()
            .map(|n| NewJob::new("t", n.as_bytes().to_vec()))
            .collect()
    }

    fn payloads(out: &[Enqueued]) -> Vec<String> {
        out.iter()
            .map(|e| String::from_utf8(e.job.payload.clone()).unwrap())
            .collect()
    }

    /// Waits (without a time limit) until `n` callers wait in line behind the leader.
    fn until_waiting(c: &Combiner, n: usize) {
        while c.line.lock().waiting.len() < n {
            std::thread::yield_now();
        }
    }

    /// Statements whose first [`LEADERS`] stay in flight until the test releases them (one
    /// `release` each), so that the next callers line up behind them.
    struct Held {
        runs: Runs,
        ids: AtomicU32,
        release: Mutex<mpsc::Sender<()>>,
        held: Mutex<mpsc::Receiver<()>>,
    }

    impl Held {
        fn new() -> Held {
            let (tx, rx) = mpsc::channel();
            Held {
                runs: Runs::default(),
                ids: AtomicU32::new(0),
                release: Mutex::new(tx),
                held: Mutex::new(rx),
            }
        }

        /// A statement: the first [`LEADERS`] wait to be released; `fail(n)` says what the
        /// n-th does instead of succeeding.
        fn run(
            &self,
            jobs: Vec<NewJob>,
            fail: impl Fn(usize) -> Option<Error>,
        ) -> Result<(Vec<Enqueued>, Done)> {
            let n = self.runs.lock().len();
            let r = run_ok(&self.runs, &self.ids, jobs);
            if n < LEADERS {
                self.held.lock().recv().unwrap();
            }
            match fail(n) {
                Some(e) => Err(e),
                None => r,
            }
        }

        fn release(&self) {
            self.release.lock().send(()).unwrap();
        }

        /// Waits until `n` statements have started.
        fn until_started(&self, n: usize) {
            while self.runs.lock().len() < n {
                std::thread::yield_now();
            }
        }
    }

    #[test]
    fn callers_that_arrive_while_statements_are_in_flight_share_the_next_one() {
        let c = Combiner::default();
        let h = Held::new();
        let run = |jobs| h.run(jobs, |_| None);
        std::thread::scope(|s| {
            let a = s.spawn(|| c.enqueue(jobs(&["a"]), run, |_| {}).unwrap());
            h.until_started(1);
            let a2 = s.spawn(|| c.enqueue(jobs(&["a2"]), run, |_| {}).unwrap());
            h.until_started(2);
            // Both leaders are busy: the next callers line up.
            let b = s.spawn(|| c.enqueue(jobs(&["b1", "b2"]), run, |_| {}).unwrap());
            until_waiting(&c, 1);
            let d = s.spawn(|| c.enqueue(jobs(&["d"]), run, |_| {}).unwrap());
            until_waiting(&c, 2);
            let e = s.spawn(|| c.enqueue(jobs(&["e1", "e2", "e3"]), run, |_| {}).unwrap());
            until_waiting(&c, 3);
            h.release();
            h.release();
            assert_eq!(payloads(&a.join().unwrap()), ["a"]);
            assert_eq!(payloads(&a2.join().unwrap()), ["a2"]);
            assert_eq!(payloads(&b.join().unwrap()), ["b1", "b2"]);
            assert_eq!(payloads(&d.join().unwrap()), ["d"]);
            assert_eq!(payloads(&e.join().unwrap()), ["e1", "e2", "e3"]);
        });
        // Three statements: the first two callers alone, then the three that waited, in
        // the order they came.
        assert_eq!(
            *h.runs.lock(),
            vec![
                vec!["a".to_string()],
                vec!["a2".to_string()],
                ["b1", "b2", "d", "e1", "e2", "e3"]
                    .map(String::from)
                    .to_vec()
            ]
        );
        assert_eq!(c.line.lock().leaders, 0, "every lead is released");
    }

    #[test]
    fn a_failed_statement_fails_each_of_its_callers_with_its_code_and_the_next_one_runs() {
        let c = Combiner::default();
        let h = Held::new();
        let run = |jobs| {
            h.run(jobs, |n| {
                (n == LEADERS).then(|| Error::Storage {
                    context: "the server went away".into(),
                    source: None,
                })
            })
        };
        std::thread::scope(|s| {
            let a = s.spawn(|| c.enqueue(jobs(&["a"]), run, |_| {}));
            h.until_started(1);
            let a2 = s.spawn(|| c.enqueue(jobs(&["a2"]), run, |_| {}));
            h.until_started(2);
            let b = s.spawn(|| c.enqueue(jobs(&["b"]), run, |_| {}));
            until_waiting(&c, 1);
            let d = s.spawn(|| c.enqueue(jobs(&["d"]), run, |_| {}));
            until_waiting(&c, 2);
            h.release();
            h.release();
            assert!(a.join().unwrap().is_ok());
            assert!(a2.join().unwrap().is_ok());
            for r in [b.join().unwrap(), d.join().unwrap()] {
                let e = r.unwrap_err();
                assert_eq!(e.code().as_str(), "STORAGE");
                assert!(e.message().contains("the server went away"), "{e}");
            }
        });
        assert_eq!(h.runs.lock()[LEADERS], ["b", "d"]);
        assert_eq!(
            payloads(&c.enqueue(jobs(&["f"]), run, |_| {}).unwrap()),
            ["f"]
        );
        assert_eq!(c.line.lock().leaders, 0);
    }

    #[test]
    fn a_panicking_statement_answers_the_others_and_releases_its_lead() {
        let c = Combiner::default();
        let h = Held::new();
        let run = |jobs| {
            h.run(jobs, |n| {
                assert!(n != 0, "the statement panicked");
                None
            })
        };
        std::thread::scope(|s| {
            let a = s.spawn(|| c.enqueue(jobs(&["a"]), run, |_| {}));
            h.until_started(1);
            let a2 = s.spawn(|| c.enqueue(jobs(&["a2"]), run, |_| {}));
            h.until_started(2);
            let b = s.spawn(|| c.enqueue(jobs(&["b"]), run, |_| {}));
            until_waiting(&c, 1);
            h.release();
            h.release();
            assert!(a.join().is_err(), "the leader's own call panics");
            assert_eq!(payloads(&a2.join().unwrap().unwrap()), ["a2"]);
            // b waited in line, outside the statement that panicked: it runs.
            assert_eq!(payloads(&b.join().unwrap().unwrap()), ["b"]);
        });
        assert_eq!(c.line.lock().leaders, 0);
    }

    #[test]
    fn a_statement_takes_at_most_max_jobs_from_the_line_but_a_large_batch_goes_alone() {
        let slot = |n| {
            Arc::new(Slot {
                n,
                bytes: 0,
                jobs: Mutex::new(Vec::new()),
                answer: Mutex::new(Answer::Wait),
                cv: Condvar::new(),
            })
        };
        let mut line = Line::default();
        for n in [MAX_JOBS + 5, MAX_JOBS - 1, 1, 1] {
            line.waiting.push_back(slot(n));
        }
        let mut sizes = || {
            Combiner::take_batch(&mut line)
                .iter()
                .map(|s| s.n)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(), [MAX_JOBS + 5]);
        assert_eq!(sizes(), [MAX_JOBS - 1, 1]);
        assert_eq!(sizes(), [1]);
        assert_eq!(sizes(), Vec::<usize>::new());
    }
}
