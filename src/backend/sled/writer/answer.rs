//! A caller's answer slot: the writer (or syncer) fills it once, the caller sleeps on it.
//!
//! A `bounded(1)` channel did the same, but a crossbeam receiver spins and calls
//! `sched_yield` for a while before it sleeps: with 16 callers waiting on one fsync, those
//! spins took about a fifth of the CPU the writer and syncer needed (2 cores). Here the
//! caller sleeps at once on a condition variable, and the answer wakes it once.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// What a slot holds.
enum State<T> {
    /// Not answered yet.
    Waiting,
    /// The answer, not yet taken.
    Answered(T),
    /// The sender was dropped without answering (the writer is unwinding).
    Dropped,
    /// The caller took the answer.
    Taken,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

/// Why [`AnswerRx::recv_timeout`] returned without an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// Nothing yet: look again later.
    Timeout,
    /// The sender is gone without answering: no answer will come.
    Dropped,
}

/// The writer's end: answers once.
pub(crate) struct AnswerTx<T>(Option<Arc<Slot<T>>>);

/// The caller's end: waits for the answer.
pub(crate) struct AnswerRx<T>(Arc<Slot<T>>);

/// A new answer slot, both ends.
pub(crate) fn answer_slot<T>() -> (AnswerTx<T>, AnswerRx<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting),
        ready: Condvar::new(),
    });
    (AnswerTx(Some(slot.clone())), AnswerRx(slot))
}

impl<T> AnswerTx<T> {
    /// Answers and wakes the caller (if it still waits; an answer nobody takes is dropped
    /// with the slot).
    pub(crate) fn send(mut self, value: T) {
        if let Some(slot) = self.0.take() {
            Self::fill(&slot, State::Answered(value));
        }
    }

    fn fill(slot: &Slot<T>, to: State<T>) {
        let mut st = slot.state.lock();
        if matches!(*st, State::Waiting) {
            *st = to;
        }
        drop(st);
        slot.ready.notify_one();
    }
}

impl<T> Drop for AnswerTx<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            Self::fill(&slot, State::Dropped);
        }
    }
}

impl<T> AnswerRx<T> {
    /// The answer, waiting at most `timeout` for it.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<T, NoAnswer> {
        let mut st = self.0.state.lock();
        if matches!(*st, State::Waiting) {
            // A spurious wake-up only shortens this wait: the caller looks again.
            let _ = self.0.ready.wait_for(&mut st, timeout);
        }
        match std::mem::replace(&mut *st, State::Taken) {
            State::Answered(v) => Ok(v),
            State::Waiting => {
                *st = State::Waiting;
                Err(NoAnswer::Timeout)
            }
            State::Dropped | State::Taken => {
                *st = State::Dropped;
                Err(NoAnswer::Dropped)
            }
        }
    }

    /// The answer if there is one now.
    pub(crate) fn try_recv(&self) -> Result<T, NoAnswer> {
        self.recv_timeout(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_sent_before_the_wait_is_received() {
        let (tx, rx) = answer_slot();
        tx.send(7);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(7));
        // Taken once: the slot is spent.
        assert_eq!(rx.try_recv(), Err(NoAnswer::Dropped));
    }

    #[test]
    fn a_waiting_caller_is_woken_by_the_answer() {
        let (tx, rx) = answer_slot();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            // Far longer than the test takes: only the answer ends this wait (a lost wake-up
            // fails it after 30 s).
            rx.recv_timeout(Duration::from_secs(30))
        });
        started_rx.recv().unwrap();
        tx.send("done");
        assert_eq!(h.join().unwrap(), Ok("done"));
    }

    #[test]
    fn nothing_yet_is_a_timeout_and_a_dropped_sender_says_so() {
        let (tx, rx) = answer_slot::<u8>();
        assert_eq!(rx.try_recv(), Err(NoAnswer::Timeout));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(NoAnswer::Timeout)
        );
        drop(tx);
        assert_eq!(rx.try_recv(), Err(NoAnswer::Dropped));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)),
            Err(NoAnswer::Dropped)
        );
    }

    #[test]
    fn a_waiting_caller_is_woken_when_the_sender_drops() {
        let (tx, rx) = answer_slot::<u8>();
        let h = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(30)));
        drop(tx);
        assert_eq!(h.join().unwrap(), Err(NoAnswer::Dropped));
    }
}
