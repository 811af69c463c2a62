//! Claiming ahead of the free worker slots while attempts are short.
//!
//! A slot frees when its attempt's process ends; claiming for it takes a
//! write transaction (on SQLite, queued behind the one in flight), and only
//! then can the next process start. Measured with 4 workers and
//! `run: "true"` on SQLite: a process lived 1.4 ms from spawn to exit, and
//! its slot then stood empty for 3.4 ms on average while the claim for it
//! landed; the machine was a third idle.
//!
//! So while the processes of recent attempts ran shorter than [`SHORT`],
//! the claim loop also claims executions for slots that are not free yet,
//! as many per slot as run in [`WAIT`] (one to four), and starts their
//! attempts in the claim: each waits in its runner for a slot and starts
//! its process the moment one frees, while the landing that refills the
//! queue runs beside it, and larger claims make fewer statements per
//! execution. The cost is bounded by the same measure: such an attempt is
//! recorded RUNNING about `WAIT` (or one short attempt) before its process
//! starts; if the engine dies meanwhile, recovery ends it as it ends the
//! attempts that ran; a shutdown's grace runs it, since it has started; a
//! cancel stops it before its process starts. Once attempts run longer,
//! nothing is claimed ahead: a long wait for a slot would keep work from
//! another engine that is free to run it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Attempts whose processes run shorter than this (on a moving average)
/// are worth claiming ahead for: the claim's round trips are then a large
/// share of a slot's time.
pub(crate) const SHORT: Duration = Duration::from_millis(50);

/// The weight of the newest attempt in the moving average (1/8): a long
/// attempt among short ones stops claiming ahead at once, and it takes a
/// few short ones to start it again.
const NEWEST: u64 = 8;

/// No attempt has ended yet.
const UNKNOWN: u64 = u64::MAX;

/// How long an attempt claimed ahead is meant to wait for its slot while
/// attempts are very short: as many are claimed ahead per slot as run in
/// this time, at least one and at most [`MOST_PER_SLOT`].
pub(crate) const WAIT: Duration = Duration::from_millis(10);

/// Executions claimed ahead per worker slot, at most.
pub(crate) const MOST_PER_SLOT: usize = 4;

/// How many executions to hold claimed beyond the free slots: while
/// attempts are short, per slot as many as run in [`WAIT`] (between one
/// and [`MOST_PER_SLOT`]), so one waits about `WAIT` for its slot, or one
/// attempt's time when attempts take longer; none when attempts are not
/// short, or before any has ended.
///
/// Measured with 4 workers, 10k one-task executions, `run: "true"` (about
/// 2 ms per attempt), in pairs on one machine: 4 in all drained SQLite at
/// 805-865/s and PostgreSQL at 493-502/s; 8 in all at 920-998/s and
/// 565-596/s; 16 in all at 1,014/s and 667/s. Larger claims make the
/// difference: 2.3, 1.8 and 1.3 statements per execution on SQLite.
pub(crate) fn ahead(workers: usize, typical: Option<Duration>) -> usize {
    match typical {
        Some(t) if t < SHORT => {
            let per_slot = WAIT.as_micros() / t.as_micros().max(1);
            workers * per_slot.clamp(1, MOST_PER_SLOT as u128) as usize
        }
        _ => 0,
    }
}

/// The recent run time of attempts' processes, and how many claimed
/// attempts wait for a slot.
#[derive(Debug)]
pub(crate) struct Pace {
    /// Moving average of process run times, in microseconds.
    average_us: AtomicU64,
    waiting: AtomicUsize,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            average_us: AtomicU64::new(UNKNOWN),
            waiting: AtomicUsize::new(0),
        }
    }
}

impl Pace {
    /// Counts in a process that ran for `took`.
    pub(crate) fn ran(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(UNKNOWN - 1);
        let _ = self
            .average_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(match old {
                    UNKNOWN => us,
                    old => old - old / NEWEST + us / NEWEST,
                })
            });
    }

    /// The moving average; `None` before any process has ended.
    pub(crate) fn typical(&self) -> Option<Duration> {
        match self.average_us.load(Ordering::Relaxed) {
            UNKNOWN => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Attempts started in a claim that wait for a slot.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Counts one attempt waiting for a slot until the token is dropped.
    pub(crate) fn wait(self: &Arc<Self>) -> Waiting {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self.clone())
    }
}

/// An attempt the claim started that has no slot yet.
#[derive(Debug)]
pub(crate) struct Waiting(Arc<Pace>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_ahead_only_while_attempts_are_short() {
        let ms = Duration::from_millis;
        let table: &[(usize, Option<Duration>, usize)] = &[
            (4, None, 0),
            (4, Some(Duration::ZERO), 16),
            (4, Some(ms(1)), 16),
            (4, Some(ms(2)), 16),
            (4, Some(ms(3)), 12),
            (4, Some(ms(5)), 8),
            (4, Some(ms(10)), 4),
            (4, Some(ms(49)), 4),
            (4, Some(SHORT), 0),
            (4, Some(ms(600_000)), 0),
            (1, Some(ms(1)), 4),
            (1, Some(ms(50)), 0),
            (16, Some(ms(10)), 16),
        ];
        for &(workers, typical, want) in table {
            assert_eq!(
                ahead(workers, typical),
                want,
                "{workers} workers, {typical:?}"
            );
        }
    }

    #[test]
    fn the_average_follows_recent_attempts_and_one_long_one_stops_claiming_ahead() {
        let pace = Pace::default();
        assert_eq!(pace.typical(), None);
        pace.ran(Duration::from_millis(2));
        assert_eq!(pace.typical(), Some(Duration::from_millis(2)));
        for _ in 0..50 {
            pace.ran(Duration::from_micros(1500));
        }
        let short = pace.typical().unwrap();
        assert!(short < Duration::from_millis(2), "{short:?}");
        pace.ran(Duration::from_secs(1));
        assert_eq!(ahead(4, pace.typical()), 0);
    }

    #[test]
    fn a_waiting_attempt_counts_until_it_has_a_slot() {
        let pace = Arc::new(Pace::default());
        let a = pace.wait();
        let b = pace.wait();
        assert_eq!(pace.waiting(), 2);
        drop(a);
        assert_eq!(pace.waiting(), 1);
        drop(b);
        assert_eq!(pace.waiting(), 0);
    }
}
