//! A run lock kept in the warehouse itself, so two `init`/`elt` runs against
//! the same warehouse (local or S3) never interleave.
//!
//! The lock is a sequence of small files `_lakehouse/lock/<n>.json`, each
//! written with a create-only put, so of two writers racing for number n+1
//! exactly one wins (the same primitive as table commits). The newest file
//! is the lock's state: `held` by an owner until `expires_at`, or `free`.
//! - acquire: the newest entry is free, expired or absent -> create n+1 `held`;
//! - renew (every ttl/3, in the background): create n+1 `held` again; if
//!   someone else created n+1 first, the lock was taken over and is lost;
//! - release: create n+1 `free`.
//!
//! A run killed without releasing stops renewing; after `ttl` its entry is
//! expired and the next run takes over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::Warehouse;

const LOCK_DIR: &str = "_lakehouse/lock";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    state: String,
    owner: String,
    pid: u32,
    host: String,
    command: String,
    at_ms: i64,
    expires_at_ms: i64,
}

/// A held lock. Dropping it stops the renewals; call [`RunLock::release`]
/// to free it at once.
pub struct RunLock {
    wh: Warehouse,
    owner: String,
    command: String,
    ttl: Duration,
    seq: Arc<Mutex<u64>>,
    lost: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

fn entry_path(wh: &Warehouse, n: u64) -> object_store::path::Path {
    wh.url().store_path(&format!("{LOCK_DIR}/{n:020}.json"))
}

async fn newest(wh: &Warehouse) -> Result<Option<(u64, Entry)>> {
    let prefix = wh.url().store_path(LOCK_DIR);
    let metas: Vec<_> = wh
        .store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::from(e).context("cannot list the run lock"))?;
    let Some(n) = metas
        .iter()
        .filter_map(|m| {
            m.location
                .filename()?
                .strip_suffix(".json")?
                .parse::<u64>()
                .ok()
        })
        .max()
    else {
        return Ok(None);
    };
    let bytes = wh
        .store()
        .get(&entry_path(wh, n))
        .await
        .map_err(|e| Error::from(e).context("cannot read the run lock"))?
        .bytes()
        .await
        .map_err(|e| Error::from(e).context("cannot read the run lock"))?;
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("run lock entry {n} is corrupt: {e}"),
        )
    })?;
    Ok(Some((n, entry)))
}

async fn put_entry(wh: &Warehouse, n: u64, e: &Entry) -> Result<bool> {
    let json = serde_json::to_vec(e).map_err(|e| Error::internal(e.to_string()))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match wh
        .store()
        .put_opts(
            &entry_path(wh, n),
            PutPayload::from(Bytes::from(json)),
            opts,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Ok(false),
        Err(e) => Err(Error::from(e).context("cannot write the run lock")),
    }
}

impl RunLock {
    /// Take the lock for `command`, or fail naming the current holder.
    pub async fn acquire(wh: &Warehouse, command: &str, ttl: Duration) -> Result<RunLock> {
        let owner = uuid::Uuid::new_v4().to_string();
        loop {
            let now = Utc::now().timestamp_millis();
            let current = newest(wh).await?;
            let next = match &current {
                None => 0,
                Some((n, e)) if e.state == "free" || e.expires_at_ms < now => n + 1,
                Some((_, e)) => {
                    return Err(Error::new(
                        ErrorKind::CommitConflict,
                        format!(
                            "the warehouse is locked by `{}` (pid {} on {}) until {}; wait for it to finish",
                            e.command,
                            e.pid,
                            e.host,
                            chrono::DateTime::from_timestamp_millis(e.expires_at_ms)
                                .map(|t| t.to_rfc3339())
                                .unwrap_or_default()
                        ),
                    ));
                }
            };
            if let Some((_, e)) = &current
                && e.state == "held"
            {
                tracing::warn!(holder = %e.owner, "taking over an expired run lock");
            }
            let entry = Entry {
                state: "held".into(),
                owner: owner.clone(),
                pid: std::process::id(),
                host: std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
                command: command.into(),
                at_ms: now,
                expires_at_ms: now + ttl.as_millis() as i64,
            };
            if put_entry(wh, next, &entry).await? {
                let mut lock = RunLock {
                    wh: wh.clone(),
                    owner,
                    command: command.into(),
                    ttl,
                    seq: Arc::new(Mutex::new(next)),
                    lost: Arc::new(AtomicBool::new(false)),
                    renewer: None,
                };
                lock.cleanup(next).await;
                lock.start_renewer();
                return Ok(lock);
            }
            // Lost the race for `next`: look again.
        }
    }

    async fn cleanup(&self, upto: u64) {
        for n in upto.saturating_sub(64)..upto.saturating_sub(8) {
            let _ = self.wh.store().delete(&entry_path(&self.wh, n)).await;
        }
    }

    fn entry(&self, state: &str) -> Entry {
        let now = Utc::now().timestamp_millis();
        Entry {
            state: state.into(),
            owner: self.owner.clone(),
            pid: std::process::id(),
            host: std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            command: self.command.clone(),
            at_ms: now,
            expires_at_ms: now + self.ttl.as_millis() as i64,
        }
    }

    fn start_renewer(&mut self) {
        let wh = self.wh.clone();
        let seq = self.seq.clone();
        let lost = self.lost.clone();
        let every = self.ttl / 3;
        let held = self.entry("held");
        self.renewer = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let mut n = seq.lock().await;
                let now = Utc::now().timestamp_millis();
                let entry = Entry {
                    at_ms: now,
                    expires_at_ms: now + (held.expires_at_ms - held.at_ms),
                    ..held.clone()
                };
                match put_entry(&wh, *n + 1, &entry).await {
                    Ok(true) => *n += 1,
                    Ok(false) | Err(_) => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }));
    }

    /// Fail if the lock was taken over by another run.
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::CommitConflict,
                "the run lock was taken over by another run; stopping",
            ));
        }
        Ok(())
    }

    /// Delete the lock's entries older than its newest `keep` (every run
    /// adds a few, each renewal one). Only the holder prunes, and only
    /// entries below its own, which no writer ever reads again. Returns the
    /// entries deleted (path in the store, bytes); with `dry_run`, those
    /// that would be.
    pub async fn prune_history(&self, keep: usize, dry_run: bool) -> Result<Vec<(String, u64)>> {
        let newest = *self.seq.lock().await;
        let prefix = self.wh.url().store_path(LOCK_DIR);
        let metas: Vec<_> = self
            .wh
            .store()
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| Error::from(e).context("cannot list the run lock"))?;
        let old: Vec<(String, u64)> = metas
            .into_iter()
            .filter(|m| {
                m.location
                    .filename()
                    .and_then(|f| f.strip_suffix(".json")?.parse::<u64>().ok())
                    .is_some_and(|n| n + (keep as u64) <= newest)
            })
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        if !dry_run {
            for (path, _) in &old {
                match self.wh.store().delete(&path.as_str().into()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::from(e).context(format!("cannot delete {path}"))),
                }
            }
        }
        Ok(old)
    }

    /// Free the lock.
    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let n = *self.seq.lock().await;
        if !put_entry(&self.wh, n + 1, &self.entry("free")).await? {
            tracing::warn!("the run lock was taken over before release");
        }
        Ok(())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}
