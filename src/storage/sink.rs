//! Streaming new rows into Parquet data files while they are computed.
//!
//! A commit's new rows arrive as one or more *parts*: streams of record
//! batches, each written in order (a part's rows are never interleaved with
//! another part's inside a file). [`sink`] runs a few file writers at once
//! (one per core), each a task rolling over to a new file at the target
//! size, and feeds them:
//! - **one part** (a sorted model, an extracted resource): runs of
//!   [`SinkOptions::run_rows`] rows go to the writers in turn, so several
//!   cores encode while each file stays in the part's order (a file holds
//!   runs in increasing order);
//! - **several parts** (the partitions of a plan, e.g. the unified bridge's
//!   peripherals): up to one part per writer at a time, each part wholly to
//!   the writer it took, so files stay clustered by part.
//!
//! Memory: a batch is held from when its part yields it until its writer has
//! encoded it (each writer's queue holds at most [`QUEUE`] batches), plus the
//! row group each writer is encoding. What the sink keeps beyond that is
//! bounded by the caller: the key columns it is asked for (a merge's keys)
//! and, while under [`SinkOptions::keep_rows_bytes`], the rows themselves.
//!
//! Invariant: the sink only writes files; it never references them. A
//! failure (a part's error, a writer's error, the caller dropped) leaves at
//! most unreferenced files under the table's `data/` folder, which no reader
//! sees.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::spec::{DataFile, DataFileFormat, Schema};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::file::properties::WriterProperties;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::error::{Error, Result};

/// Default [`crate::storage::Warehouse::target_file_size`]: 128 MiB, the
/// size data files roll over at.
pub const DEFAULT_TARGET_FILE_SIZE: usize = 128 * 1024 * 1024;

/// A part of a commit's new rows: batches written in the order they come.
pub type Part<'a> = BoxStream<'a, Result<RecordBatch>>;

/// What is done to each batch before it is written (e.g. conforming it to
/// the table's schema).
pub type Prepare = Arc<dyn Fn(RecordBatch) -> Result<RecordBatch> + Send + Sync>;

/// Batches queued per writer: the part producing them waits when its
/// writer is this far behind.
const QUEUE: usize = 2;

/// How [`sink`] writes.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Writers (files being encoded) at once.
    pub writers: usize,
    /// A file is closed and the next one started past this many bytes.
    pub target_file_size: usize,
    /// Parquet properties of every file.
    pub properties: WriterProperties,
    /// With one part: rows sent to a writer before the next one takes over.
    pub run_rows: usize,
    /// Name prefix of the files (unique per commit).
    pub prefix: String,
    /// Several parts: each in files of its own (a writer per part) instead
    /// of sharing the writers' files.
    pub file_per_part: bool,
    /// Key columns to keep of every row (for matching base rows later).
    pub key_columns: Vec<String>,
    /// Keep the rows themselves while they take at most this many bytes
    /// (`None`: do not keep them).
    pub keep_rows_bytes: Option<usize>,
}

/// What [`sink`] wrote.
#[derive(Debug, Default)]
pub struct Sunk {
    pub files: Vec<DataFile>,
    pub rows: u64,
    /// [`SinkOptions::key_columns`] of every row (no batch if none asked).
    pub keys: Vec<RecordBatch>,
    /// Every row, when they stayed under [`SinkOptions::keep_rows_bytes`].
    pub kept: Option<Vec<RecordBatch>>,
}

/// What the parts' drivers collect besides the files.
struct Collected {
    keys: Vec<RecordBatch>,
    kept: Option<Vec<RecordBatch>>,
    kept_bytes: usize,
}

/// A writer task: batches in, data files out when the queue closes.
struct FileWriter {
    queue: mpsc::Sender<RecordBatch>,
    done: AbortOnDropHandle<Result<Vec<DataFile>>>,
}

fn spawn_writer(table: &Table, schema: &Schema, options: &SinkOptions, i: usize) -> FileWriter {
    // `i` tells the writers of one commit apart in file names.
    let (queue, mut batches) = mpsc::channel::<RecordBatch>(QUEUE);
    let (table, schema) = (table.clone(), Arc::new(schema.clone()));
    let (props, size) = (options.properties.clone(), options.target_file_size);
    let prefix = format!("{}-w{i}", options.prefix);
    let done = tokio::spawn(async move {
        // The writer (and its first file) is made with the first batch: a
        // writer that gets none writes nothing.
        let Some(first) = batches.recv().await else {
            return Ok(vec![]);
        };
        let rolling = RollingFileWriterBuilder::new(
            ParquetWriterBuilder::new(props, schema),
            size,
            table.file_io().clone(),
            DefaultLocationGenerator::new(table.metadata())?,
            DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet),
        );
        let mut writer = DataFileWriterBuilder::new(rolling).build(None).await?;
        writer.write(first).await?;
        while let Some(b) = batches.recv().await {
            writer.write(b).await?;
        }
        Ok(writer.close().await?)
    });
    FileWriter {
        queue,
        done: AbortOnDropHandle::new(done),
    }
}

/// Write `parts` (each batch passed through `prepare` first, empty batches
/// skipped) as data files of `table` under `schema`; see the module docs.
pub async fn sink<'p>(
    table: &Table,
    schema: &Schema,
    parts: Vec<Part<'p>>,
    prepare: Prepare,
    options: &SinkOptions,
) -> Result<Sunk> {
    let k = options.writers.max(1);
    let writers: Vec<FileWriter> = (0..k)
        .map(|i| spawn_writer(table, schema, options, i))
        .collect();
    let queues: Vec<mpsc::Sender<RecordBatch>> = writers.iter().map(|w| w.queue.clone()).collect();
    let single = parts.len() == 1;
    let driver = Driver {
        table,
        schema,
        options,
        prepare: &*prepare,
        queues: &queues,
        single,
        free: Mutex::new((0..k).rev().collect()),
        rows: AtomicU64::new(0),
        collected: Mutex::new(Collected {
            keys: Vec::new(),
            kept: options.keep_rows_bytes.map(|_| Vec::new()),
            kept_bytes: 0,
        }),
        own_files: Mutex::new(Vec::new()),
        next_writer: AtomicUsize::new(k),
    };
    // At most `k` parts at once (one per writer).
    let mut fed: Result<()> = Ok(());
    {
        let mut pending = futures::stream::FuturesUnordered::new();
        let mut parts = parts.into_iter();
        loop {
            while pending.len() < k {
                match parts.next() {
                    Some(p) => pending.push(driver.drive(p)),
                    None => break,
                }
            }
            match pending.next().await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    fed = Err(e);
                    break;
                }
                None => break,
            }
        }
    }
    let Driver {
        rows,
        collected,
        own_files,
        ..
    } = driver;
    drop(queues);
    let mut files = own_files
        .into_inner()
        .map_err(|_| Error::internal("sink state poisoned"))?;
    let mut failed: Option<Error> = None;
    for w in writers {
        drop(w.queue);
        match w.done.await {
            Ok(Ok(f)) => files.extend(f),
            Ok(Err(e)) => {
                failed.get_or_insert(e.context("writing a data file"));
            }
            Err(e) => {
                failed.get_or_insert(Error::internal(format!("a data file writer failed: {e}")));
            }
        }
    }
    // A writer's own error explains a part's "writer stopped".
    if let Some(e) = failed {
        return Err(e);
    }
    fed?;
    let c = collected
        .into_inner()
        .map_err(|_| Error::internal("sink state poisoned"))?;
    Ok(Sunk {
        files,
        rows: rows.into_inner(),
        keys: c.keys,
        kept: c.kept,
    })
}

/// What the parts of one [`sink`] call share.
struct Driver<'a> {
    table: &'a Table,
    schema: &'a Schema,
    options: &'a SinkOptions,
    prepare: &'a (dyn Fn(RecordBatch) -> Result<RecordBatch> + Send + Sync),
    queues: &'a [mpsc::Sender<RecordBatch>],
    /// One part only: it feeds every writer in turn.
    single: bool,
    /// Writers no part holds (several parts).
    free: Mutex<Vec<usize>>,
    rows: AtomicU64,
    collected: Mutex<Collected>,
    /// Files of the parts written to files of their own.
    own_files: Mutex<Vec<DataFile>>,
    next_writer: AtomicUsize,
}

impl Driver<'_> {
    /// A batch of a part, prepared and counted (`None`: empty).
    fn take(&self, batch: Result<RecordBatch>) -> Result<Option<RecordBatch>> {
        let batch = (self.prepare)(batch?)?;
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        collect(&self.collected, &batch, self.options)?;
        Ok(Some(batch))
    }

    /// Write one part (see the module docs).
    async fn drive(&self, mut part: Part<'_>) -> Result<()> {
        let options = self.options;
        if options.file_per_part && !self.single {
            let i = self.next_writer.fetch_add(1, Ordering::Relaxed);
            let w = spawn_writer(self.table, self.schema, options, i);
            while let Some(batch) = part.next().await {
                if let Some(b) = self.take(batch)?
                    && w.queue.send(b).await.is_err()
                {
                    break;
                }
            }
            drop(w.queue);
            let files = w
                .done
                .await
                .map_err(|e| Error::internal(format!("a data file writer failed: {e}")))?
                .map_err(|e| e.context("writing a data file"))?;
            lock(&self.own_files)?.extend(files);
            return Ok(());
        }
        // The writers this part feeds: all of them in turn (one part), or
        // one it holds until done (several parts; [`sink`] runs at most
        // one part per writer at a time, so one is free).
        let lanes: Vec<usize> = if self.single {
            (0..self.queues.len()).collect()
        } else {
            let lane = lock(&self.free)?
                .pop()
                .ok_or_else(|| Error::internal("no free data file writer"))?;
            vec![lane]
        };
        let (mut lane, mut run) = (0usize, 0usize);
        while let Some(batch) = part.next().await {
            let Some(batch) = self.take(batch)? else {
                continue;
            };
            let n = batch.num_rows();
            if self.queues[lanes[lane]].send(batch).await.is_err() {
                // The writer ended early: its own error tells why.
                return Err(Error::internal("a data file writer stopped"));
            }
            run += n;
            if run >= options.run_rows {
                (lane, run) = ((lane + 1) % lanes.len(), 0);
            }
        }
        if !self.single {
            lock(&self.free)?.extend(lanes);
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| Error::internal("sink state poisoned"))
}

/// Keep what the options ask of `batch`: its key columns, and the batch
/// while the kept rows stay under the byte limit (all dropped past it).
fn collect(collected: &Mutex<Collected>, batch: &RecordBatch, options: &SinkOptions) -> Result<()> {
    let keys = if options.key_columns.is_empty() {
        None
    } else {
        let idx = options
            .key_columns
            .iter()
            .map(|c| Ok(batch.schema_ref().index_of(c)?))
            .collect::<Result<Vec<_>>>()?;
        Some(batch.project(&idx)?)
    };
    let mut guard = lock(collected)?;
    let c = &mut *guard;
    c.keys.extend(keys);
    if let (Some(kept), Some(limit)) = (c.kept.as_mut(), options.keep_rows_bytes) {
        kept.push(batch.clone());
        let bytes = c.kept_bytes + batch.get_array_memory_size();
        if bytes > limit {
            c.kept = None;
        } else {
            c.kept_bytes = bytes;
        }
    }
    Ok(())
}
