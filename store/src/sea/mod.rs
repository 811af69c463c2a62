//! The SeaORM implementation of the store, one for every backend.

pub(crate) mod db;
mod group;
pub(crate) mod ops;
pub(crate) mod write;

use crate::config::{StorageConfig, StorageType};
use crate::connect::Access;
use crate::error::{Result, StoreError};
use crate::migrate::{self, MigrationStatus};
use crate::state_store::{StateStore, StoreTransaction};
use crate::types::{
    ClaimRequest, Claimed, Execution, PurgeReport, Recorded, RecoveryReport, StartPick, TaskRun,
    Write,
};
use crate::{claim, recovery, retention};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use db::{HasDb, Pool, Tx};
use sea_orm::DatabaseConnection;
use std::time::Duration;
use uuid::Uuid;

/// The store over a connection pool.
pub struct SeaStore {
    pool: Pool,
    kind: StorageType,
}

impl SeaStore {
    /// Connects as configured, checks the schema (migrating when
    /// `auto_migrate` is set) and returns the store.
    pub async fn open(config: &StorageConfig) -> Result<Self> {
        Self::open_with(config, Access::Create).await
    }

    /// Opens a database that must already exist: a missing SQLite file, or a
    /// database without the flowstate schema, is [`StoreError::NoDatabase`]
    /// and nothing is created.
    pub async fn open_existing(config: &StorageConfig) -> Result<Self> {
        Self::open_with(config, Access::Existing).await
    }

    /// Opens an existing database for a command that only reads: one
    /// connection and one query to check the schema version, instead of the
    /// pool, the migration status and the catalogue check of
    /// [`open_existing`](Self::open_existing), which it falls back to when the
    /// versions differ. A table dropped by hand then shows as the failing
    /// query's error rather than at opening.
    pub async fn open_reader(config: &StorageConfig) -> Result<Self> {
        Self::open_with(config, Access::Read).await
    }

    async fn open_with(config: &StorageConfig, access: Access) -> Result<Self> {
        // Without autoMigrate nothing may be created: not even the file,
        // which would only fail the schema check next time.
        let file_access = match access {
            Access::Create if !config.auto_migrate => Access::Existing,
            other => other,
        };
        let db = crate::connect::connect_within(
            config,
            file_access,
            crate::connect::DEFAULT_CONNECT_DEADLINE,
        )
        .await?;
        let target = config.display_target();
        let busy = Duration::from_millis(config.sqlite.busy_timeout_ms);
        if access == Access::Read && migrate::is_current(&db).await {
            return Ok(Self::wrap(db, None, busy));
        }
        if let Err(e) = migrate::ensure_current(&db, config.auto_migrate, access, &target).await {
            let _ = db.close().await;
            return Err(e);
        }
        let writer = match (config.kind, access) {
            (StorageType::Sqlite, Access::Create | Access::Existing) => {
                match crate::connect::connect_sqlite_writer(config).await {
                    Ok(writer) => Some(writer),
                    Err(e) => {
                        let _ = db.close().await;
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        Ok(Self::wrap(db, writer, busy))
    }

    /// Wraps an open pool after checking its schema (migrating it when
    /// `auto_migrate` is set).
    pub async fn from_connection(db: DatabaseConnection, auto_migrate: bool) -> Result<Self> {
        let busy = Duration::from_millis(StorageConfig::default().sqlite.busy_timeout_ms);
        Self::check(
            db,
            auto_migrate,
            Access::Create,
            "the given connection",
            busy,
        )
        .await
    }

    async fn check(
        db: DatabaseConnection,
        auto_migrate: bool,
        access: Access,
        target: &str,
        busy: Duration,
    ) -> Result<Self> {
        migrate::ensure_current(&db, auto_migrate, access, target).await?;
        Ok(Self::wrap(db, None, busy))
    }

    /// The store over a pool whose schema was checked, with the SQLite
    /// writers' own connection when there is one.
    fn wrap(db: DatabaseConnection, writer: Option<DatabaseConnection>, busy: Duration) -> Self {
        let kind = match db.get_database_backend() {
            sea_orm::DbBackend::Sqlite => StorageType::Sqlite,
            sea_orm::DbBackend::Postgres => StorageType::Postgres,
            _ => StorageType::Mysql,
        };
        SeaStore {
            pool: Pool::new(db, writer, busy),
            kind,
        }
    }

    /// The underlying pool, for tools that need raw SQL (EXPLAIN, benchmarks).
    #[cfg(feature = "diagnostics")]
    pub fn connection(&self) -> &DatabaseConnection {
        self.pool.connection()
    }
}

impl HasDb for SeaStore {
    type Db = Pool;

    fn db(&self) -> &Pool {
        &self.pool
    }
}

/// An open write transaction of a [`SeaStore`], from [`StateStore::begin`].
pub struct SeaTransaction {
    tx: Tx,
}

impl HasDb for SeaTransaction {
    type Db = Tx;

    fn db(&self) -> &Tx {
        &self.tx
    }
}

#[async_trait]
impl StoreTransaction for SeaTransaction {
    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await
    }
}

#[async_trait]
impl StateStore for SeaStore {
    fn storage_type(&self) -> StorageType {
        self.kind
    }

    fn one_writer(&self) -> bool {
        crate::sea::db::Db::backend(&self.pool).one_writer()
    }

    async fn begin(&self) -> Result<Box<dyn StoreTransaction>> {
        Ok(Box::new(SeaTransaction {
            tx: self.pool.begin().await?,
        }))
    }

    async fn migration_status(&self) -> Result<MigrationStatus> {
        migrate::status(self.pool.connection()).await
    }

    async fn recover(&self, node_id: &str, now: DateTime<Utc>) -> Result<RecoveryReport> {
        if node_id.is_empty() {
            return Err(StoreError::InvalidInput("node id is empty".into()));
        }
        recovery::recover(&self.pool, Some(node_id), now, Vec::new()).await
    }

    async fn recover_expired(&self, now: DateTime<Utc>) -> Result<RecoveryReport> {
        recovery::recover(&self.pool, None, now, Vec::new()).await
    }

    async fn orphaned(&self, node_id: Option<&str>, now: DateTime<Utc>) -> Result<Vec<Execution>> {
        recovery::orphaned_executions(&self.pool, node_id, now).await
    }

    async fn recover_retrying(
        &self,
        node_id: Option<&str>,
        now: DateTime<Utc>,
        retry: Vec<Uuid>,
    ) -> Result<RecoveryReport> {
        recovery::recover(&self.pool, node_id, now, retry).await
    }

    async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        batch_size: u64,
        dry_run: bool,
    ) -> Result<PurgeReport> {
        retention::purge(&self.pool, cutoff, batch_size, dry_run).await
    }

    async fn purge_batch(&self, cutoff: DateTime<Utc>, batch_size: u64) -> Result<PurgeReport> {
        retention::purge_batch(&self.pool, cutoff, batch_size).await
    }

    async fn claim_due(
        &self,
        node_id: &str,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<Execution>> {
        claim::claim_due(&self.pool, node_id, limit, lease).await
    }

    async fn claim_due_with_runs(
        &self,
        node_id: &str,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<(Execution, Vec<TaskRun>)>> {
        claim::claim_due_with_runs(&self.pool, node_id, limit, lease).await
    }

    async fn claim_and_start(
        &self,
        node_id: &str,
        limit: u64,
        lease: Duration,
        pick: std::sync::Arc<StartPick>,
    ) -> Result<Vec<Claimed>> {
        claim::claim_and_start(&self.pool, node_id, limit, lease, pick).await
    }

    async fn record_and_claim(
        &self,
        batches: Vec<Vec<Write>>,
        claim: Option<ClaimRequest>,
    ) -> Result<Recorded> {
        claim::record_and_claim(&self.pool, batches, claim).await
    }

    async fn claim_execution(
        &self,
        node_id: &str,
        id: Uuid,
        lease: Duration,
    ) -> Result<Option<Execution>> {
        claim::claim_one(&self.pool, node_id, id, lease).await
    }

    async fn renew_lease(&self, node_id: &str, lease: Duration) -> Result<u64> {
        claim::renew_lease(self.pool.connection(), node_id, lease).await
    }

    async fn renew_leases(&self, node_id: &str, ids: Vec<Uuid>, lease: Duration) -> Result<u64> {
        claim::renew_leases(self.pool.connection(), node_id, &ids, lease).await
    }

    async fn close(&self) -> Result<()> {
        self.pool.close().await
    }
}
