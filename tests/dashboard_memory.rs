//! What the dashboard's lists hold in memory: a page of jobs with large payloads, and a bulk
//! action on everything matching, never hold more than a few payloads at once. The server
//! runs in this process, so a counting allocator sees what it allocates.

#[path = "dashboard_common/mod.rs"]
mod dashboard_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use dashboard_common::{get, post, serve_with};
use jobspool::{NewJob, Spool};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1024 * 1024;
const JOBS: usize = 40;

/// The tests take turns (the counters are the process's).
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The most bytes allocated at once while `f` ran, above what was allocated before.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst).saturating_sub(base)
}

fn spool_builder() -> jobspool::Builder {
    Spool::builder().cache_bytes(MIB as u64)
}

fn fill(spool: &Spool) {
    for i in 0..JOBS {
        let payload = vec![b'a' + (i % 26) as u8; MIB - 64];
        spool.enqueue(NewJob::new("big", payload)).unwrap();
    }
}

#[test]
fn dashboard_job_pages_hold_few_payloads() {
    let _turn = turn();
    let s = serve_with(spool_builder(), false);
    fill(&s.spool);
    // (The page answers, and lists every job: the page size is capped at 100, not below.)
    let peak = peak_during(|| {
        let a = get(s.addr, "/jobs?limit=500");
        assert_eq!(a.status, 200);
        assert_eq!(a.body.matches("data-id=").count(), JOBS);
    });
    assert!(
        peak < JOBS * 3 / 5 * MIB,
        "a page of {JOBS} jobs of 1 MiB held {} MiB at once",
        peak / MIB
    );
}

#[test]
fn dashboard_bulk_matching_holds_few_payloads() {
    let _turn = turn();
    let s = serve_with(spool_builder(), false);
    fill(&s.spool);
    let peak = peak_during(|| {
        let a = post(
            s.addr,
            "/actions/bulk",
            &[
                ("action", "cancel"),
                ("scope", "matching"),
                ("type", "big"),
                ("back", "/jobs"),
            ],
        );
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(
            a.body.contains(&format!("data-count=\"{JOBS}\"")),
            "{}",
            a.body
        );
    });
    assert!(
        peak < JOBS * 3 / 5 * MIB,
        "selecting {JOBS} jobs of 1 MiB held {} MiB at once",
        peak / MIB
    );
}
