//! The rows of one generated table: chunks of [`CHUNK_ROWS`] rows, in
//! memory or (for append-only tables of a spilling generator) in a spill
//! file.
//!
//! # Invariants
//! - Row `r` is in chunk `r / CHUNK_ROWS`, at cell `(r % CHUNK_ROWS) *
//!   width` (`width = columns.len()`); every chunk but the last is full.
//! - Only full chunks are ever spilled (see [`super::spill`]), and only
//!   chunks the generator will not read or update again: any full chunk of
//!   a table of [`PRUNABLE`] (spilled as it fills), and, of the orders and
//!   work orders, the chunks before the first one still open
//!   ([`TableData::spill_settled`]; only open rows are read back and
//!   updated). The last chunk, which rows are appended to, and every chunk
//!   of the other tables stay in memory, so the generator's in-place reads
//!   and updates ([`TableData::get`], [`TableData::set`]) never meet a
//!   spilled chunk (one that did would be a generator bug, and panics).
//! - Reading is the same whether chunks are spilled or not: [`TableData::rows`],
//!   [`TableData::chunks`] and [`TableData::rows_at`] give the same cells
//!   in the same order; they borrow in-memory chunks and decode spilled ones
//!   (a read failure is an error).
//! - A table that shares a spill store counts the bytes of its in-memory
//!   chunks there (on allocation, clone and drop), which is what the
//!   store's budget is checked against.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::NaiveDate;

use super::cell::Cell;
use super::defs::{PRUNABLE, TABLES, TableDef};
use super::spill::{SpillStore, Spilled};
use crate::error::{Error, Result};

/// Rows per storage chunk of a [`TableData`].
pub(super) const CHUNK_ROWS: usize = 4096;

const CELL_BYTES: usize = std::mem::size_of::<Cell>();

/// One chunk of rows.
#[derive(Debug)]
enum Chunk {
    Mem(Vec<Cell>),
    Spilled(Spilled),
}

/// The rows of one generated table, stored row after row in chunks of
/// [`CHUNK_ROWS`] rows: one allocation per 4096 rows instead of one per
/// row, and no copying of a whole table when it grows. Chunks of
/// append-only tables may be spilled to disk (see the module docs).
#[derive(Debug)]
pub struct TableData {
    /// Static description (name, API path, key).
    pub def: &'static TableDef,
    /// snake_case column names, in landing order.
    pub columns: Vec<&'static str>,
    chunks: Vec<Chunk>,
    rows: usize,
    /// Rows modified before this date are left out (see the generator's
    /// module docs).
    horizon: Option<NaiveDate>,
    /// How many rows were left out.
    pub(super) pruned: usize,
    /// The generator's spill store, if it spills (every table shares it to
    /// count what it holds; only [`PRUNABLE`] ones spill).
    spill: Option<Arc<SpillStore>>,
    spillable: bool,
}

/// The cells of one chunk: borrowed from memory or decoded from the spill
/// file (`rows * width` cells).
#[derive(Debug, Clone)]
pub enum ChunkCells<'a> {
    /// An in-memory chunk.
    Mem(&'a [Cell]),
    /// A spilled chunk, decoded.
    Decoded(Arc<Vec<Cell>>),
}

impl std::ops::Deref for ChunkCells<'_> {
    type Target = [Cell];

    fn deref(&self) -> &[Cell] {
        match self {
            ChunkCells::Mem(c) => c,
            ChunkCells::Decoded(c) => c,
        }
    }
}

/// Map the pages of `chunk`'s capacity now, in one `madvise` call, instead
/// of one page fault per 4 KiB page as the rows are written: the generator
/// fills a few hundred MB of fresh memory at the start of every run, and
/// those faults were two fifths of its time. Contents are unchanged; where
/// the call is unsupported (kernels before 5.14, other systems) the pages
/// fault in as before.
fn populate(chunk: &Vec<Cell>) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = chunk.as_ptr() as usize;
        let end = start + chunk.capacity() * CELL_BYTES;
        let (from, to) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if to > from {
            // SAFETY: `from..to` lies inside `chunk`'s allocation, which
            // outlives the call; MADV_POPULATE_WRITE maps the pages
            // without changing what they hold.
            unsafe {
                libc::madvise(
                    from as *mut libc::c_void,
                    to - from,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = chunk;
}

fn bytes_of(chunk: &Vec<Cell>) -> i64 {
    (chunk.capacity() * CELL_BYTES) as i64
}

impl Clone for TableData {
    fn clone(&self) -> Self {
        let chunks = self
            .chunks
            .iter()
            .map(|c| match c {
                Chunk::Mem(v) => {
                    // Same capacity, so the tail chunk is not reallocated
                    // as it fills and the count below stays exact.
                    let mut copy = Vec::with_capacity(v.capacity());
                    copy.extend_from_slice(v);
                    if let Some(s) = &self.spill {
                        s.hold(bytes_of(&copy));
                    }
                    Chunk::Mem(copy)
                }
                Chunk::Spilled(s) => Chunk::Spilled(*s),
            })
            .collect();
        Self {
            def: self.def,
            columns: self.columns.clone(),
            chunks,
            rows: self.rows,
            horizon: self.horizon,
            pruned: self.pruned,
            spill: self.spill.clone(),
            spillable: self.spillable,
        }
    }
}

impl Drop for TableData {
    fn drop(&mut self) {
        if let Some(s) = &self.spill {
            for c in &self.chunks {
                if let Chunk::Mem(v) = c {
                    s.hold(-bytes_of(v));
                }
            }
        }
    }
}

/// Tables are equal when their descriptions, counts and rows are, wherever
/// the rows are kept (a read failure makes them unequal).
impl PartialEq for TableData {
    fn eq(&self, other: &Self) -> bool {
        self.def == other.def
            && self.columns == other.columns
            && self.rows == other.rows
            && self.horizon == other.horizon
            && self.pruned == other.pruned
            && self.chunks.len() == other.chunks.len()
            && self
                .chunks()
                .zip(other.chunks())
                .all(|(a, b)| matches!((a, b), (Ok(a), Ok(b)) if *a == *b))
    }
}

impl TableData {
    pub(super) fn new(def: &'static TableDef) -> Self {
        Self {
            def,
            columns: Vec::new(),
            chunks: Vec::new(),
            rows: 0,
            horizon: None,
            pruned: 0,
            spill: None,
            spillable: false,
        }
    }

    /// With rows modified before `horizon` left out (`None`: the full
    /// table); only for tables of [`PRUNABLE`].
    pub(super) fn with_horizon(def: &'static TableDef, horizon: Option<NaiveDate>) -> Self {
        let mut t = Self::new(def);
        t.horizon = horizon;
        t
    }

    /// Count this (still empty) table's memory in `store` and, for a table
    /// of [`PRUNABLE`], spill its full chunks there when over budget.
    pub(super) fn spilling(mut self, store: Option<Arc<SpillStore>>) -> Self {
        debug_assert!(self.chunks.is_empty());
        self.spillable = store.is_some() && PRUNABLE.iter().any(|&i| TABLES[i] == self.def.table);
        self.spill = store;
        self
    }

    /// The date before which modified rows were left out (`None`: the table
    /// is whole). Its rows are exactly the full table's rows modified on or
    /// after that date.
    pub fn horizon(&self) -> Option<NaiveDate> {
        self.horizon
    }

    /// How many rows were left out (see [`TableData::horizon`]).
    pub fn pruned(&self) -> usize {
        self.pruned
    }

    fn width(&self) -> usize {
        self.columns.len().max(1)
    }

    /// Number of rows held (without those left out, see
    /// [`TableData::horizon`]).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// How many of the table's chunks are spilled.
    pub fn spilled_chunks(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| matches!(c, Chunk::Spilled(_)))
            .count()
    }

    fn chunk(&self, i: usize) -> Result<ChunkCells<'_>> {
        match self.chunks.get(i) {
            Some(Chunk::Mem(v)) => Ok(ChunkCells::Mem(v)),
            Some(Chunk::Spilled(s)) => {
                let store = self.spill.as_ref().ok_or_else(|| {
                    Error::internal("spilled chunk of a table without a spill store")
                })?;
                let cells = store
                    .read(s)
                    .map_err(|e| e.context(format!("table {}", self.def.table)))?;
                if cells.len() != s.cells() {
                    return Err(Error::internal(format!(
                        "table {}: spilled chunk {i} read back with {} cells instead of {}",
                        self.def.table,
                        cells.len(),
                        s.cells()
                    )));
                }
                Ok(ChunkCells::Decoded(cells))
            }
            None => Err(Error::internal(format!(
                "table {}: no chunk {i}",
                self.def.table
            ))),
        }
    }

    /// Every chunk, in order: `CHUNK_ROWS` rows each (the last may have
    /// fewer), row after row, each row `columns.len()` cells.
    pub fn chunks(&self) -> impl Iterator<Item = Result<ChunkCells<'_>>> + '_ {
        (0..self.chunks.len()).map(|i| self.chunk(i))
    }

    /// Every row, in order, each aligned with `columns`: borrowed from
    /// memory, copied out of a decoded chunk when spilled.
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            table: self,
            next_chunk: 0,
            current: None,
            at: 0,
            failed: false,
        }
    }

    /// Row `row`, aligned with `columns` (`None` if out of range).
    pub fn row(&self, row: usize) -> Result<Option<Cow<'_, [Cell]>>> {
        if row >= self.rows {
            return Ok(None);
        }
        let w = self.width();
        let at = (row % CHUNK_ROWS) * w;
        let chunk = self.chunk(row / CHUNK_ROWS)?;
        Ok(match chunk {
            ChunkCells::Mem(c) => c.get(at..at + w).map(Cow::Borrowed),
            ChunkCells::Decoded(c) => c.get(at..at + w).map(|r| Cow::Owned(r.to_vec())),
        })
    }

    /// The rows `ids` (any order, each in range), in that order: each chunk
    /// they fall in is read once.
    pub fn rows_at(&self, ids: &[usize]) -> Result<Vec<Cow<'_, [Cell]>>> {
        let w = self.width();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_unstable_by_key(|&i| ids[i]);
        let mut out: Vec<Cow<'_, [Cell]>> = vec![Cow::Borrowed(&[]); ids.len()];
        let mut current: Option<(usize, ChunkCells<'_>)> = None;
        for i in order {
            let row = ids[i];
            if row >= self.rows {
                return Err(Error::internal(format!(
                    "table {}: row {row} out of range ({} rows)",
                    self.def.table, self.rows
                )));
            }
            let c = row / CHUNK_ROWS;
            if current.as_ref().is_none_or(|(at, _)| *at != c) {
                current = Some((c, self.chunk(c)?));
            }
            let at = (row % CHUNK_ROWS) * w;
            let cells = match &current {
                Some((_, ChunkCells::Mem(m))) => m.get(at..at + w).map(Cow::Borrowed),
                Some((_, ChunkCells::Decoded(d))) => {
                    d.get(at..at + w).map(|r| Cow::Owned(r.to_vec()))
                }
                None => None,
            };
            out[i] = cells.ok_or_else(|| {
                Error::internal(format!("table {}: row {row} missing", self.def.table))
            })?;
        }
        Ok(out)
    }

    /// Index of a column.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| *c == name)
    }

    /// The value of `column` in row `row` (`None` if either is out of range).
    pub fn value(&self, row: usize, column: &str) -> Result<Option<Cell>> {
        let Some(c) = self.column_index(column) else {
            return Ok(None);
        };
        Ok(self.row(row)?.and_then(|r| r.get(c).cloned()))
    }

    /// Spill the last chunk if it is full, the table may spill and the
    /// store is over budget; its allocation is kept for the next rows
    /// (returned). A failed write keeps the chunk in memory (the store
    /// remembers the failure).
    fn spill_last(&mut self) -> Option<Vec<Cell>> {
        let store = self
            .spill
            .as_ref()
            .filter(|s| self.spillable && s.over_budget())?;
        let Some(Chunk::Mem(cells)) = self.chunks.last() else {
            return None;
        };
        let spilled = store.write(cells).ok()?;
        let last = self.chunks.len() - 1;
        match std::mem::replace(&mut self.chunks[last], Chunk::Spilled(spilled)) {
            Chunk::Mem(mut v) => {
                v.clear();
                Some(v)
            }
            Chunk::Spilled(_) => None,
        }
    }

    /// Spill the full in-memory chunks that lie wholly before row `below`
    /// while the store is over budget: for a table the generator reads
    /// back, `below` is its first row still open to reads and updates (see
    /// the module docs). Nothing happens without a store; a failed write
    /// keeps the chunk (the store remembers the failure).
    pub(super) fn spill_settled(&mut self, below: usize) {
        let Some(store) = self.spill.as_ref() else {
            return;
        };
        let settled = (below / CHUNK_ROWS).min(self.chunks.len().saturating_sub(1));
        for chunk in &mut self.chunks[..settled] {
            if !store.over_budget() {
                return;
            }
            let Chunk::Mem(cells) = chunk else {
                continue;
            };
            let Ok(spilled) = store.write(cells) else {
                return;
            };
            store.hold(-bytes_of(cells));
            *chunk = Chunk::Spilled(spilled);
        }
    }

    /// The chunk the next row goes to.
    fn tail(&mut self) -> &mut Vec<Cell> {
        let cap = CHUNK_ROWS * self.width();
        let full = match self.chunks.last() {
            None => true,
            Some(Chunk::Mem(c)) => c.len() >= cap,
            Some(Chunk::Spilled(_)) => true,
        };
        if full {
            let chunk = match self.spill_last() {
                // The spilled chunk's allocation, counted already.
                Some(reused) if reused.capacity() == cap => reused,
                reused => {
                    if let (Some(v), Some(s)) = (&reused, &self.spill) {
                        s.hold(-bytes_of(v));
                    }
                    let chunk = Vec::with_capacity(cap);
                    // A table past its first chunk is a big one: its next
                    // chunk will be filled, so its pages are mapped in one
                    // call.
                    if !self.chunks.is_empty() {
                        populate(&chunk);
                    }
                    if let Some(s) = &self.spill {
                        s.hold(bytes_of(&chunk));
                    }
                    chunk
                }
            };
            self.chunks.push(Chunk::Mem(chunk));
        }
        match self.chunks.last_mut() {
            Some(Chunk::Mem(c)) => c,
            _ => unreachable!("the last chunk is in memory"),
        }
    }

    pub(super) fn push<const N: usize>(&mut self, row: [(&'static str, Cell); N]) -> usize {
        self.check_columns(&row);
        self.tail().extend(row.into_iter().map(|(_, v)| v));
        self.rows += 1;
        self.rows - 1
    }

    /// Take the columns of the table's first row; every later row must have
    /// the same.
    pub(super) fn check_columns<const N: usize>(&mut self, row: &[(&'static str, Cell); N]) {
        if self.columns.is_empty() {
            self.columns = row.iter().map(|(k, _)| *k).collect();
        } else {
            assert!(
                self.columns.len() == N
                    && self
                        .columns
                        .iter()
                        .zip(row)
                        // The same literal is usually one address: compare
                        // addresses first, text only when they differ.
                        .all(|(a, (b, _))| std::ptr::eq(*a, *b) || a == b),
                "generator bug: inconsistent columns for {}",
                self.def.table
            );
        }
    }

    /// Append a row unless its cursor (modified date) is before the
    /// table's horizon.
    pub(super) fn push_unless_old<const N: usize>(&mut self, row: [(&'static str, Cell); N]) {
        if let Some(horizon) = self.horizon {
            let modified = row.iter().find(|(k, _)| *k == self.def.cursor);
            let old = match modified.map(|(_, v)| v) {
                Some(Cell::Date(d) | Cell::Timestamp(d)) => *d < horizon,
                _ => panic!(
                    "generator bug: {} row without a modified date",
                    self.def.table
                ),
            };
            if old {
                self.check_columns(&row);
                self.pruned += 1;
                return;
            }
        }
        self.push(row);
    }

    /// Append a row of cells already aligned with `columns`.
    pub(super) fn push_cells(&mut self, row: &[Cell]) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.tail().extend_from_slice(row);
        self.rows += 1;
    }

    /// The in-memory cells of `row`, `column` (a generator bug otherwise:
    /// see the module docs).
    fn mem_index(&self, row: usize, column: &str) -> (usize, usize) {
        let c = self
            .column_index(column)
            .unwrap_or_else(|| panic!("generator bug: {} has no column {column}", self.def.table));
        (row / CHUNK_ROWS, (row % CHUNK_ROWS) * self.width() + c)
    }

    pub(super) fn set(&mut self, row: usize, column: &str, value: Cell) {
        let (chunk, at) = self.mem_index(row, column);
        match &mut self.chunks[chunk] {
            Chunk::Mem(v) => v[at] = value,
            Chunk::Spilled(_) => panic!(
                "generator bug: {} row {row} is updated after being spilled",
                self.def.table
            ),
        }
    }

    pub(super) fn get(&self, row: usize, column: &str) -> &Cell {
        let (chunk, at) = self.mem_index(row, column);
        match &self.chunks[chunk] {
            Chunk::Mem(v) => &v[at],
            Chunk::Spilled(_) => panic!(
                "generator bug: {} row {row} is read back after being spilled",
                self.def.table
            ),
        }
    }
}

/// The iterator of [`TableData::rows`]: each row or the error of reading
/// its chunk (after which it ends).
pub struct Rows<'a> {
    table: &'a TableData,
    next_chunk: usize,
    current: Option<ChunkCells<'a>>,
    at: usize,
    failed: bool,
}

impl<'a> Iterator for Rows<'a> {
    type Item = Result<Cow<'a, [Cell]>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let w = self.table.width();
        loop {
            match &self.current {
                Some(ChunkCells::Mem(c)) if self.at + w <= c.len() => {
                    let c: &'a [Cell] = c;
                    self.at += w;
                    return Some(Ok(Cow::Borrowed(&c[self.at - w..self.at])));
                }
                Some(ChunkCells::Decoded(c)) if self.at + w <= c.len() => {
                    self.at += w;
                    return Some(Ok(Cow::Owned(c[self.at - w..self.at].to_vec())));
                }
                _ => {}
            }
            if self.next_chunk >= self.table.chunks.len() {
                return None;
            }
            match self.table.chunk(self.next_chunk) {
                Ok(c) => {
                    self.current = Some(c);
                    self.at = 0;
                    self.next_chunk += 1;
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
