//! A full database, as the engine reacts to it: the first write that finds
//! it full says so (with where the database is), claiming pauses (new work
//! would only fail), and claims resume by themselves a little later, when
//! cleanup or retention may have made room.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long claiming pauses after a write found the database full.
pub(crate) const PAUSE: Duration = Duration::from_secs(5);

/// When a write last found the database full, and which database it is.
pub(crate) struct Full {
    at: String,
    since: Mutex<Option<Instant>>,
}

impl Full {
    /// For the database shown as `at` (a path, or a URL without password).
    pub(crate) fn new(at: String) -> Self {
        Full {
            at,
            since: Mutex::new(None),
        }
    }

    /// A write found the database full just now; said once per episode.
    pub(crate) fn notice(&self) {
        let mut since = self.since.lock().unwrap_or_else(|p| p.into_inner());
        if !since.is_some_and(|at| at.elapsed() < PAUSE) {
            tracing::error!(
                "database or disk is full at {}; claiming pauses until there is room (free space, for example with flowstate cleanup)",
                self.at
            );
        }
        *since = Some(Instant::now());
    }

    /// Whether claiming should wait: a write found the database full less
    /// than [`PAUSE`] ago.
    pub(crate) fn pausing(&self) -> bool {
        self.since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < PAUSE)
    }
}
