//! The engine: start-up recovery, the scheduler that claims due executions,
//! the worker pool, lease renewal, the recovery sweep, retention, and an
//! explicit shutdown.

use crate::config::Config;
use crate::definitions::Definitions;
use crate::driver::{self, Ctx, End, Slot};
use crate::error::{EngineError, Result};
use crate::pace::{self, Pace};
use crate::process::Stop;
use crate::recorder::{self, Record, Recorder};
use crate::workflow::Workflow;
use chrono::Utc;
use flowstate_store::types::*;
use flowstate_store::{now, StateStore, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Claims (with the drivers' ends) in flight at once on a server: one
/// commits while the next gathers. Measured with 4 workers on PostgreSQL:
/// 316/s with one at a time, 367/s with two. SQLite has one at a time: its
/// writers take turns anyway, and two split the ends that one would land
/// together (653/s against 550/s).
const IN_FLIGHT: usize = 2;

/// What a claim's task brings back to the claim loop.
struct Landed {
    /// How many executions it asked for.
    asked: usize,
    /// The drivers' ends it carried.
    records: Vec<Record>,
    /// The worker slots held for the attempts it starts.
    permits: Vec<tokio::sync::OwnedSemaphorePermit>,
    result: std::result::Result<Recorded, StoreError>,
}

/// The claims in flight, with how many executions each asked for (in
/// all, and beyond the free slots).
struct Landings {
    tasks: JoinSet<Landed>,
    asked: std::collections::HashMap<tokio::task::Id, Ask>,
    most: usize,
}

/// Executions to claim: for the worker slots free now, and ahead of them
/// (see [`crate::pace`]).
#[derive(Debug, Clone, Copy, Default)]
struct Ask {
    free: usize,
    ahead: usize,
}

impl Ask {
    /// What to claim: `free` slots and `ahead` more, within `room` drivers
    /// and the store's largest claim (a thousand workers claiming four
    /// ahead each would ask for more).
    fn within(free: usize, ahead: usize, room: usize) -> Ask {
        let most = room.min(flowstate_store::MAX_CLAIM as usize);
        let free = free.min(most);
        Ask {
            free,
            ahead: ahead.min(most - free),
        }
    }

    fn total(self) -> usize {
        self.free + self.ahead
    }
}

impl Landings {
    /// At most [`IN_FLIGHT`] in flight at once, one where the database
    /// has one writer.
    fn for_store(store: &dyn StateStore) -> Self {
        Landings {
            tasks: JoinSet::new(),
            asked: Default::default(),
            most: if store.one_writer() { 1 } else { IN_FLIGHT },
        }
    }

    /// Whether another claim may start.
    fn room(&self) -> bool {
        self.tasks.len() < self.most
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Executions asked for by the claims in flight.
    fn asked(&self) -> usize {
        self.asked.values().map(|a| a.total()).sum()
    }

    /// Executions asked for ahead of the free slots by the claims in flight.
    fn ahead(&self) -> usize {
        self.asked.values().map(|a| a.ahead).sum()
    }

    fn spawn(&mut self, asked: Ask, claim: impl Future<Output = Landed> + Send + 'static) {
        let id = self.tasks.spawn(claim).id();
        self.asked.insert(id, asked);
    }

    /// The next claim to come back.
    async fn next(&mut self) -> Option<std::result::Result<Landed, tokio::task::JoinError>> {
        let landed = self.tasks.join_next_with_id().await?;
        let id = match &landed {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        self.asked.remove(&id);
        Some(landed.map(|(_, l)| l))
    }
}

/// Executions deleted per retention transaction.
const RETENTION_BATCH: u64 = 1000;
/// How often retention runs while serving.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// A running engine bound to one store and one node id.
pub struct Engine {
    store: Arc<dyn StateStore>,
    config: Config,
    node: String,
    workers: Arc<Semaphore>,
    kill_tx: watch::Sender<Stop>,
    definitions: Arc<Definitions>,
    live: Live,
    full: Arc<crate::full::Full>,
    outputs: Arc<crate::outputs::Outputs>,
    pace: Arc<Pace>,
}

impl Engine {
    /// Opens the store (migrating as configured), runs start-up recovery for
    /// this node and logs a one-line summary.
    pub async fn start(config: Config) -> Result<Engine> {
        let store = flowstate_store::open(&config.storage).await?;
        Self::with_store(store, config).await
    }

    /// Like [`start`](Self::start), on a store that is already open.
    pub async fn with_store(store: Arc<dyn StateStore>, config: Config) -> Result<Engine> {
        let node = config
            .engine
            .node_id
            .clone()
            .unwrap_or_else(|| crate::node::default_node_id(&config.storage));
        let definitions = Arc::<Definitions>::default();
        let report = recover(store.as_ref(), &definitions, Some(&node)).await?;
        let killed = crate::guard::kill_leftovers(&report);
        if killed > 0 {
            tracing::warn!(
                groups = killed,
                "killed {killed} task process group(s) left running by the engine that crashed"
            );
        }
        tracing::info!(
            node = %node,
            failed = report.failed.len(),
            requeued = report.requeued.len(),
            queued = report.queued,
            "recovery: {} RUNNING execution(s) failed with CRASH_RECOVERY, {} put back to retry (retryOnCrash), {} finished SUCCEEDED, {} released, {} waiting to run",
            report.failed.len(),
            report.retried.len(),
            report.succeeded.len(),
            report.requeued.len(),
            report.queued
        );
        let (kill_tx, _) = watch::channel(Stop::No);
        let target = config.storage.display_target();
        Ok(Engine {
            workers: Arc::new(Semaphore::new(config.engine.workers)),
            store,
            config,
            node,
            kill_tx,
            definitions,
            live: Live::default(),
            full: Arc::new(crate::full::Full::new(target)),
            outputs: Arc::default(),
            pace: Arc::default(),
        })
    }

    /// The store this engine writes to.
    pub fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }

    /// This engine's node id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    fn ctx(&self) -> Arc<Ctx> {
        self.ctx_with(None)
    }

    /// The drivers' context, with the claim loop's recorder when serving.
    fn ctx_with(&self, recorder: Option<Recorder>) -> Arc<Ctx> {
        Arc::new(Ctx {
            recorder,
            store: self.store.clone(),
            node: self.node.clone(),
            workers: self.workers.clone(),
            poll: self.config.engine.poll_interval,
            kill: self.kill_tx.subscribe(),
            definitions: self.definitions.clone(),
            lease: self.config.engine.lease,
            full: self.full.clone(),
            outputs: self.outputs.clone(),
            pace: self.pace.clone(),
        })
    }

    /// Registers (or updates) the workflow and persists one PENDING execution
    /// of it with all its task runs.
    pub async fn submit(&self, workflow: &Workflow, input: serde_json::Value) -> Result<Execution> {
        submit(self.store.as_ref(), workflow, input).await
    }

    /// Runs one execution in this process until it ends: claims it, drives
    /// it, and when it waits for a retry, sleeps and claims it again. The
    /// execution comes back as this engine left it, even when retention or
    /// `cleanup` purged it the moment it ended.
    pub async fn run_execution(&self, id: Uuid) -> Result<Execution> {
        let ctx = self.ctx();
        let lease = self.config.engine.lease;
        loop {
            match self.store.claim_execution(&self.node, id, lease).await? {
                Some(exec) => {
                    let renew = self.renew_loop();
                    let claimed = exec.clone();
                    let _live = self.live.enter(id);
                    let end = tokio::select! {
                        end = driver::drive(ctx.clone(), exec, None, Vec::new()) => end?,
                        _ = renew => unreachable!("the renew loop never ends"),
                    };
                    match end {
                        End::Finished(state) => return self.as_finished(claimed, state).await,
                        End::Waiting(at) => {
                            let wait = (at - Utc::now()).to_std().unwrap_or_default();
                            tokio::time::sleep(wait).await;
                        }
                        End::Lost(_) | End::Shutdown => {}
                    }
                }
                None => {
                    let exec = self.store.get_execution(id).await?;
                    if exec.state.is_terminal() {
                        return Ok(exec);
                    }
                    tokio::time::sleep(self.config.engine.poll_interval).await;
                }
            }
        }
    }

    /// The execution as it finished in `state`: read back, or, if it is
    /// already gone, what the engine holds.
    async fn as_finished(&self, claimed: Execution, state: ExecutionState) -> Result<Execution> {
        match self.store.get_execution(claimed.id).await {
            Ok(exec) => Ok(exec),
            Err(StoreError::NotFound { .. }) => {
                tracing::info!(execution = %claimed.id, %state, "the finished execution was purged at once");
                Ok(Execution {
                    state,
                    owner: None,
                    lease_expires_at: None,
                    finished_at: Some(now()),
                    ..claimed
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Marks an execution and its unfinished task runs CANCELLED. An engine
    /// running it notices within its poll interval and stops its processes.
    pub async fn cancel(store: &dyn StateStore, id: Uuid) -> Result<Execution> {
        for _ in 0..10 {
            let exec = store.get_execution(id).await?;
            if exec.state.is_terminal() {
                return Err(EngineError::Store(StoreError::InvalidTransition {
                    entity: "execution",
                    id: id.to_string(),
                    from: exec.state.to_string(),
                    to: ExecutionState::Cancelled.to_string(),
                }));
            }
            let mut t = ExecutionTransition::new(ExecutionState::Cancelled, exec.version);
            t.reason = Some(Reason::Cancelled);
            t.error = Some("cancelled on request".into());
            let tasks: Vec<TaskTransition> = store
                .list_task_runs(id)
                .await?
                .into_iter()
                .filter(|r| !r.state.is_terminal())
                .map(|r| {
                    let mut tt = TaskTransition::new(r.id, TaskState::Cancelled, r.version);
                    tt.reason = Some(Reason::Cancelled);
                    tt
                })
                .collect();
            match store.transition_execution_and_tasks(id, t, tasks).await {
                Ok(()) => return Ok(store.get_execution(id).await?),
                // The engine moved something meanwhile: read again and retry.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Store(StoreError::Conflict {
            entity: "execution",
            id: id.to_string(),
            expected: 0,
            actual: 0,
        }))
    }

    /// Renews, every third of the lease, the leases of the executions a
    /// driver of this engine is still driving: one whose driver died is
    /// left to expire, and the sweep takes it over.
    async fn renew_loop(&self) {
        let lease = self.config.engine.lease;
        let mut tick = tokio::time::interval(lease / 3);
        loop {
            tick.tick().await;
            let ids = self.live.ids();
            if ids.is_empty() {
                continue;
            }
            if let Err(e) = self.store.renew_leases(&self.node, ids, lease).await {
                tracing::warn!(error = %e, "could not renew leases");
            }
        }
    }

    /// Serves until `shutdown` resolves, then shuts down like
    /// [`serve_signals`](Self::serve_signals) after one signal.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(()).await;
            // Held open: a closed channel would read as a second signal.
            std::future::pending::<()>().await;
        });
        self.serve_signals(rx).await
    }

    /// Serves until the first message on `signals`: claims due executions
    /// while slots are free, renews leases, sweeps expired leases and runs
    /// retention. Then it shuts down without losing work: no claim and no
    /// new attempt from the first signal on; running attempts get the
    /// configured grace, then SIGTERM and, two seconds later, SIGKILL (a
    /// second signal ends the grace at once); each execution is handed back
    /// (parked, lease cleared) or finished as soon as nothing of it runs,
    /// and an attempt cut off is recorded FAILED with reason SHUTDOWN.
    pub async fn serve_signals(self, mut signals: mpsc::Receiver<()>) -> Result<()> {
        let mut drivers: JoinSet<(Uuid, Result<End>)> = JoinSet::new();
        // Boxed so it can be dropped before the pool closes: suspended in a
        // renewal, it holds a connection that closing would wait for.
        let mut renew = Box::pin(self.renew_loop());
        tracing::info!(node = %self.node, workers = self.config.engine.workers, "engine serving");
        tokio::select! {
            _ = self.claim_loop(&mut drivers, &mut signals) => {}
            _ = &mut renew => unreachable!("the renew loop never ends"),
        }
        let grace = self.config.engine.shutdown_grace;
        tracing::info!(
            running = drivers.len(),
            ?grace,
            "shutting down: no new claims, no new attempts"
        );
        let _ = self.kill_tx.send(Stop::Drain);
        // Leases are renewed while the grace lasts.
        let drained = tokio::select! {
            drained = tokio::time::timeout(grace, join_all(&mut drivers)) => drained.is_ok(),
            _ = signals.recv() => false,
            _ = &mut renew => unreachable!("the renew loop never ends"),
        };
        if !drained {
            tracing::warn!(
                running = drivers.len(),
                "grace period over; stopping running tasks (SIGTERM, then SIGKILL)"
            );
            let _ = self.kill_tx.send(Stop::Shutdown);
            tokio::select! {
                _ = join_all(&mut drivers) => {}
                _ = &mut renew => unreachable!("the renew loop never ends"),
            }
        }
        drop(renew);
        self.store.close().await?;
        Ok(())
    }

    /// Claims while slots are free and spawns a driver per claimed
    /// execution; records the drivers' ends with its claims; sweeps expired
    /// leases and runs retention on their clocks. Returns at the
    /// first signal, never in the middle of a claim (a claim cut off after
    /// its commit would leave executions nobody drives); ends it has not
    /// recorded by then go back to their drivers, which write them.
    async fn claim_loop(
        &self,
        drivers: &mut JoinSet<(Uuid, Result<End>)>,
        signals: &mut mpsc::Receiver<()>,
    ) {
        let (recorder, mut records) = recorder::channel();
        let ctx = self.ctx_with(Some(recorder));
        let cfg = &self.config.engine;
        // Claims are for free worker slots, and for up to four more per slot
        // while attempts are short (see `pace`): a claimed execution that
        // waits for a slot is failed by recovery if this engine dies before
        // starting it, so the wait must stay short. A slot is free once its
        // attempt's process has ended, while its driver still records the
        // end, so up to twice as many executions are driven as there are
        // slots (the ends of some and the claim of the next land in one
        // transaction), plus those claimed ahead.
        let capacity = cfg.workers;
        let most = capacity * (2 + pace::MOST_PER_SLOT);
        // While a backlog waits, claim for half the slots at a time: one
        // claim (a write transaction and the task runs' read) serves several
        // executions. Measured with 4 workers on SQLite: 6.9 statements per
        // one-task execution claiming slot by slot, 6.0 in pairs.
        let batch = (capacity / 2).max(1);
        let mut backlog = false;
        let mut pending = Vec::new();
        let mut landing = Landings::for_store(self.store.as_ref());
        // Whether a claim may find work: something freed a slot, the last
        // claim took all it asked for, or the poll came round. A claim
        // that found less than it asked for waits for one of those.
        let mut due = true;
        let mut poll = tokio::time::interval(cfg.poll_interval);
        let mut sweep = tokio::time::interval(cfg.lease);
        let mut retention = tokio::time::interval(RETENTION_EVERY);
        loop {
            let ask = self.ask(&ctx, most.saturating_sub(drivers.len()), &landing);
            let claim_now = due && ask.total() > 0 && (ask.total() >= batch || !backlog);
            if landing.room() && (claim_now || !pending.is_empty()) {
                let ask = if claim_now { ask } else { Ask::default() };
                due &= !claim_now;
                self.land(&ctx, &mut landing, ask, std::mem::take(&mut pending));
            }
            tokio::select! {
                Some(landed) = landing.next(), if !landing.is_empty() => {
                    if let Some(full) = self.landed(&ctx, drivers, landed) {
                        backlog = full;
                        due |= full;
                    }
                }
                // Every driver that has ended too: their slots are claimed
                // for together, one claim for several.
                Some(done) = drivers.join_next(), if !drivers.is_empty() => {
                    log_end(done);
                    std::iter::from_fn(|| drivers.try_join_next()).for_each(log_end);
                    due = true;
                }
                // Drivers' ends: every one waiting lands with the next claim.
                Some(record) = records.recv() => {
                    pending.push(record);
                    pending.extend(std::iter::from_fn(|| records.try_recv().ok()));
                    due = true;
                }
                // A slot left free while the others run long tasks is
                // claimed for at the next poll at the latest.
                _ = poll.tick() => {
                    backlog = false;
                    due = true;
                }
                // Run to their end here, the drivers' ends waiting: moved to
                // a loop of their own, a sweep cut off by shutdown held a
                // connection that closing the pool then waited for (a
                // shutdown hung on MariaDB, 1 run in 8).
                _ = sweep.tick() => self.sweep().await,
                _ = retention.tick() => self.retention().await,
                _ = signals.recv() => {
                    // Claims that committed are driven (and handed back).
                    while let Some(landed) = landing.next().await {
                        self.landed(&ctx, drivers, landed);
                    }
                    return;
                }
            }
        }
    }

    /// What to claim now, with room for `room` more drivers: the free
    /// worker slots, and while attempts are short the executions to hold
    /// ahead of them that are not held or asked for yet.
    fn ask(&self, ctx: &Ctx, room: usize, landing: &Landings) -> Ask {
        let ahead = pace::ahead(self.config.engine.workers, ctx.pace.typical())
            .saturating_sub(ctx.pace.waiting() + landing.ahead());
        let room = room.saturating_sub(landing.asked());
        Ask::within(ctx.workers.available_permits(), ahead, room)
    }

    /// Starts landing the drivers' `records` and claiming what `ask` says,
    /// in one transaction, as a task of `landing`: on a server the next can
    /// start while one waits for its commit.
    fn land(&self, ctx: &Arc<Ctx>, landing: &mut Landings, ask: Ask, records: Vec<Record>) {
        let ask = if self.full.pausing() {
            Ask::default()
        } else {
            ask
        };
        // The worker slots free now are held for the attempts the claim
        // starts; those it starts beyond them wait for the next slots.
        let permits: Vec<_> = std::iter::from_fn(|| ctx.workers.clone().try_acquire_owned().ok())
            .take(ask.free)
            .collect();
        let asked = ask.total();
        let claim = (asked > 0).then(|| ClaimRequest {
            node_id: self.node.clone(),
            limit: asked as u64,
            lease: self.config.engine.lease,
            pick: driver::start_pick(self.definitions.clone(), permits.len() + ask.ahead),
        });
        if claim.is_none() && records.is_empty() {
            return;
        }
        let store = self.store.clone();
        landing.spawn(ask, async move {
            // Without records this is `claim_and_start`, statement for statement.
            let batches = records.iter().map(|r| r.writes.clone()).collect();
            let result = store.record_and_claim(batches, claim).await;
            Landed {
                asked,
                records,
                permits,
                result,
            }
        });
    }

    /// Answers the drivers whose ends landed (or tells them to write them
    /// themselves) and spawns the drivers of the executions claimed;
    /// whether the claim took all it asked for (`None`: it asked for none).
    fn landed(
        &self,
        ctx: &Arc<Ctx>,
        drivers: &mut JoinSet<(Uuid, Result<End>)>,
        landed: std::result::Result<Landed, tokio::task::JoinError>,
    ) -> Option<bool> {
        let landed = match landed {
            Ok(landed) => landed,
            Err(e) => {
                // Its records' and slots' senders went with it: the drivers
                // write their ends themselves.
                tracing::error!(error = %e, "a claim's task failed");
                return None;
            }
        };
        let Landed {
            asked,
            records,
            mut permits,
            result,
        } = landed;
        let claimed = match result {
            Ok(Recorded { versions, claimed }) => {
                recorder::answer(records, versions);
                claimed
            }
            Err(e) => {
                // A driver's batch refused (its execution was cancelled or
                // taken away) takes the claim down with it: the driver
                // learns why when it writes alone, and the claim is made
                // again at once.
                let refused = !records.is_empty()
                    && matches!(
                        e,
                        StoreError::Conflict { .. }
                            | StoreError::InvalidTransition { .. }
                            | StoreError::NotFound { .. }
                    );
                recorder::decline(records);
                match e {
                    StoreError::StorageFull(_) => self.full.notice(),
                    e if refused => tracing::debug!(error = %e, "a driver's end was refused"),
                    e => tracing::error!(error = %e, "claiming failed"),
                }
                return (asked > 0).then_some(refused);
            }
        };
        let n = claimed.len();
        for c in claimed {
            metrics::counter!("flowstate_executions_started_total").increment(1);
            let started: Vec<driver::Started> = c
                .started
                .into_iter()
                .map(|a| match permits.pop() {
                    Some(permit) => (a, Slot::Held(permit)),
                    None => (a, Slot::Ahead(ctx.pace.wait())),
                })
                .collect();
            let ctx = ctx.clone();
            let id = c.execution.id;
            let live = self.live.enter(id);
            drivers.spawn(async move {
                let end = driver::drive(ctx, c.execution, Some(c.runs), started).await;
                drop(live);
                (id, end)
            });
        }
        (asked > 0).then_some(n == asked)
    }

    async fn sweep(&self) {
        match recover(self.store.as_ref(), &self.definitions, None).await {
            Ok(r) if !r.failed.is_empty() || !r.retried.is_empty() => {
                // A task of a dead engine on this machine may have escaped
                // its guard: the engine can die between starting a task and
                // telling the guard its group (seen under load in the fault
                // suite). Its processes carry the execution's id.
                let killed = crate::guard::kill_leftovers(&r);
                tracing::warn!(
                    failed = r.failed.len(),
                    retried = r.retried.len(),
                    killed_groups = killed,
                    "sweep ended executions whose lease expired"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "recovery sweep failed"),
        }
    }

    async fn retention(&self) {
        let days = self.config.storage.retention_days;
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
        match self.store.purge(cutoff, RETENTION_BATCH, false).await {
            Ok(r) if r.counts.executions > 0 => tracing::info!(
                executions = r.counts.executions,
                batches = r.batches,
                "retention purged executions finished over {days} days ago"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention failed"),
        }
    }
}

/// Recovery for `node` (at start-up) or of expired leases (`None`, the
/// sweep): the executions whose pinned workflow has a `retryOnCrash` task go
/// back to the queue, the others end as [`StateStore::recover`] ends them.
async fn recover(
    store: &dyn StateStore,
    definitions: &Definitions,
    node: Option<&str>,
) -> Result<RecoveryReport> {
    let at = now();
    let mut retry = Vec::new();
    for exec in store.orphaned(node, at).await? {
        if let Ok(Ok(workflow)) = definitions.pinned(store, &exec).await {
            if workflow.retries_on_crash() {
                retry.push(exec.id);
            }
        }
    }
    Ok(store.recover_retrying(node, at, retry).await?)
}

/// The executions this engine's drivers are driving: the leases it renews.
#[derive(Clone, Default)]
struct Live(Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>);

impl Live {
    /// Marks `id` as driven until the returned guard is dropped.
    fn enter(&self, id: Uuid) -> LiveGuard {
        self.lock().insert(id);
        LiveGuard(self.clone(), id)
    }

    fn ids(&self) -> Vec<Uuid> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<Uuid>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One driven execution; dropping it (the driver ended, failed or
/// panicked) stops its renewals.
struct LiveGuard(Live, Uuid);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

/// Waits for every driver, logging how each ended.
async fn join_all(drivers: &mut JoinSet<(Uuid, Result<End>)>) {
    while let Some(done) = drivers.join_next().await {
        log_end(done);
    }
}

fn log_end(done: std::result::Result<(Uuid, Result<End>), tokio::task::JoinError>) {
    match done {
        Ok((id, Ok(End::Lost(why)))) => {
            tracing::info!(execution = %id, %why, "execution taken over elsewhere")
        }
        Ok((id, Ok(end))) => tracing::debug!(execution = %id, ?end, "driver ended"),
        Ok((id, Err(e))) => {
            tracing::error!(execution = %id, error = %e, "driver failed; the execution will be recovered")
        }
        Err(e) => tracing::error!(error = %e, "driver panicked"),
    }
}

/// Registers (or updates) the workflow and persists one PENDING execution of
/// it with all its task runs, in one transaction, for any engine to run.
pub async fn submit(
    store: &dyn StateStore,
    workflow: &Workflow,
    input: serde_json::Value,
) -> Result<Execution> {
    let saved = register(store, workflow).await?;
    let (exec, _) = store
        .create_execution(NewExecution {
            workflow_id: saved.id,
            input,
            task_keys: workflow.task_keys(),
        })
        .await?;
    Ok(exec)
}

/// Saves the workflow's definition under its name.
pub async fn register(
    store: &dyn StateStore,
    workflow: &Workflow,
) -> Result<flowstate_store::types::Workflow> {
    Ok(store
        .save_workflow(NewWorkflow {
            name: workflow.name.clone(),
            definition: workflow.to_definition(),
            description: workflow.description.clone(),
        })
        .await?
        .workflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_asks_for_free_slots_first_within_the_room_and_the_largest_claim() {
        // ((free slots, ahead, room), (free asked, ahead asked))
        type Row = ((usize, usize, usize), (usize, usize));
        let table: &[Row] = &[
            ((4, 16, 100), (4, 16)),
            ((0, 16, 100), (0, 16)),
            ((4, 16, 10), (4, 6)),
            ((4, 16, 3), (3, 0)),
            ((4, 16, 0), (0, 0)),
            ((1000, 4000, 6000), (1000, 0)),
            ((10, 4000, 6000), (10, 990)),
        ];
        for &((free, ahead, room), want) in table {
            let ask = Ask::within(free, ahead, room);
            assert_eq!(
                (ask.free, ask.ahead),
                want,
                "{free} free, {ahead} ahead, room {room}"
            );
        }
    }
}
