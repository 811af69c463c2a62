//! Identical reads that arrive together share one answer, and none gets an
//! answer older than itself.
//!
//! A console left open on many screens, or a dashboard polling the list,
//! sends the same first page over and over. Each costs the page query and a
//! count of up to 10,000 index entries: at 1M executions on SQLite about
//! 1 ms, so 50 clients asking at once waited for 50 of them in turn. Here a
//! request that finds the same read in flight waits for it to end and then
//! takes the answer of the next read, which started after it arrived; the
//! first of those waiting runs that read for all of them. Every answer
//! still comes from the database, at an instant after its request arrived.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Distinct reads remembered before idle ones are forgotten.
const KEYS: usize = 256;

/// The reads of one kind (one route), by their parameters.
#[derive(Default)]
pub(crate) struct Coalesce {
    keys: Mutex<HashMap<String, Arc<Key>>>,
}

/// One read: how many times it started, and its last answer.
#[derive(Default)]
struct Key {
    started: AtomicU64,
    last: tokio::sync::Mutex<Option<(u64, Bytes)>>,
}

impl Coalesce {
    /// The answer to the read `key`: from a run of `load` that started
    /// after this call, this caller's or another's. Failures are not
    /// shared: the next caller runs the read again.
    pub async fn get<E, F, Fut>(&self, key: String, load: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, E>>,
    {
        let k = self.key(key);
        let arrived = k.started.load(Ordering::Acquire);
        let mut last = k.last.lock().await;
        if let Some((run, answer)) = &*last {
            if *run > arrived {
                return Ok(answer.clone());
            }
        }
        let run = k.started.fetch_add(1, Ordering::AcqRel) + 1;
        let answer = load().await?;
        *last = Some((run, answer.clone()));
        Ok(answer)
    }

    fn key(&self, key: String) -> Arc<Key> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= KEYS && !keys.contains_key(&key) {
            keys.retain(|_, k| Arc::strong_count(k) > 1);
        }
        keys.entry(key).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_together_share_a_read_that_started_after_them() {
        let c = Arc::new(Coalesce::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let read = |c: Arc<Coalesce>, runs: Arc<AtomicUsize>| async move {
            c.get::<(), _, _>("k".into(), || async {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(Bytes::from(n.to_string()))
            })
            .await
            .unwrap()
        };
        // The first runs; 20 arriving during it share one more run.
        let first = tokio::spawn(read(c.clone(), runs.clone()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let rest: Vec<_> = (0..20)
            .map(|_| tokio::spawn(read(c.clone(), runs.clone())))
            .collect();
        assert_eq!(first.await.unwrap(), "1");
        for r in rest {
            assert_eq!(
                r.await.unwrap(),
                "2",
                "not the answer that started before them"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Alone later: a fresh read, never the remembered answer.
        assert_eq!(read(c.clone(), runs.clone()).await, "3");
        // A failure is not shared.
        let failed = c
            .get::<&str, _, _>("k".into(), || async { Err("down") })
            .await;
        assert_eq!(failed, Err("down"));
        assert_eq!(read(c, runs).await, "4");
    }
}
