//! Recording the ends of several executions with the next claim: the
//! drivers of a serving engine hand the writes of an attempt's end to the
//! claim loop, which lands every end waiting and claims for the slots they
//! freed in one transaction (`StateStore::record_and_claim`).
//!
//! Measured with 4 workers and one-task executions: each end was a
//! transaction of its own (three guarded UPDATEs) beside half a claim's.
//! A driver whose writes the claim loop did not land (the batch was
//! refused, the database failed, the engine is shutting down) writes them
//! itself, as a driver without a claim loop always does.

use flowstate_store::types::Write;
use tokio::sync::{mpsc, oneshot};

/// One driver's batch of writes, with where the outcome goes: the versions
/// of its moves once landed, `None` when the driver must write it itself.
pub(crate) struct Record {
    /// The writes, in order, all or nothing.
    pub writes: Vec<Write>,
    /// The outcome.
    pub reply: oneshot::Sender<Option<Vec<Option<i64>>>>,
}

/// The drivers' side of the channel to the claim loop.
#[derive(Clone)]
pub(crate) struct Recorder(mpsc::UnboundedSender<Record>);

/// A recorder and the claim loop's end of it.
pub(crate) fn channel() -> (Recorder, mpsc::UnboundedReceiver<Record>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Recorder(tx), rx)
}

impl Recorder {
    /// Lands `writes` with the claim loop's next transaction: the versions
    /// of its moves, or `None` when the caller must write them itself.
    pub(crate) async fn record(&self, writes: Vec<Write>) -> Option<Vec<Option<i64>>> {
        let (reply, outcome) = oneshot::channel();
        self.0.send(Record { writes, reply }).ok()?;
        outcome.await.ok().flatten()
    }
}

/// Answers each of `records` with its batch's versions, in order.
pub(crate) fn answer(records: Vec<Record>, versions: Vec<Vec<Option<i64>>>) {
    for (record, v) in records.into_iter().zip(versions) {
        let _ = record.reply.send(Some(v));
    }
}

/// Tells the driver of each of `records` to write its batch itself.
pub(crate) fn decline(records: Vec<Record>) {
    for record in records {
        let _ = record.reply.send(None);
    }
}
