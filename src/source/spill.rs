//! Spilling the embedded source's append-only tables to a temporary file.
//!
//! At scale 10 and beyond the generated data set is millions of rows; held
//! as [`Cell`]s it would be gigabytes. The tables nothing reads back once a
//! row is made ([`super::generator::PRUNABLE`]: order lines, transactions,
//! routings, customers, ...; about three quarters of the rows) can leave
//! memory: once one of their 4096-row chunks is full and the generator
//! holds more than [`SpillOptions::above`] bytes of cells, the chunk is
//! encoded into one spill file and only its offset is kept
//! ([`super::table::TableData`] reads it back a chunk at a time). The
//! order headers and work orders, which the simulation reads back only
//! while they are open, spill their chunks before the first open row the
//! same way after day 0 and after every simulated day.
//!
//! # Semantics and invariants
//! - **Same data.** Spilling changes where rows live, never what they are:
//!   encoding is lossless (integers, float bits, dates, GUIDs and text are
//!   written exactly, and catalogue names come back as the very same
//!   `&'static str`), so every table reads back byte-identical whatever
//!   the budget, and the random draws do not depend on it.
//! - **Budget.** The store counts the bytes of cell slots (24 per [`Cell`],
//!   not the text they point to) of every in-memory chunk of the tables
//!   that share it. A full chunk of an append-only table (or a settled one
//!   of the orders and work orders) is spilled when that count is over
//!   [`SpillOptions::above`] (`0`: every such chunk); a table's last,
//!   partly filled chunk always stays in memory, and so do the other
//!   tables the simulation reads back.
//! - **Lifetime.** The spill file lives in a fresh directory named
//!   `lakehouse-source-*` under [`SpillOptions::dir`] (default: the OS
//!   temporary directory), removed when the last table sharing the store is
//!   dropped. A killed process cannot remove it, so each directory holds an
//!   `owner` file with its process id, and a new store first removes the
//!   `lakehouse-source-*` directories beside it whose owner is gone (a
//!   directory without that file, or whose owner still runs, is left).
//! - **Errors.** A failed write or read is an [`Error`], never a panic. A
//!   chunk that could not be written stays in memory, and the store
//!   remembers the first failure: the generator reports it after building
//!   or advancing, and every later read of a spilled chunk fails with it.
//!
//! # Format
//! A chunk is its cells one after the other, each a tag byte and its
//! payload: `0` null, `1` false, `2` true, `3` integer (zigzag LEB128),
//! `4` float (8 bytes, little-endian bits), `5` date and `6` timestamp
//! (days from 0001-01-01, 4 bytes), `7` GUID (16 bytes), `8` catalogue name
//! (LEB128 index into the store's table of `&'static str`), `9` text
//! (LEB128 length, then UTF-8 bytes). The file is private to the process
//! and never read by another version.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{Datelike, NaiveDate};

use super::cell::Cell;
pub use crate::budget::SpillOptions;
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// What a generator's spill holds and did (see [`crate::source::Generator::spill_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpillStats {
    /// Bytes of cell slots held in memory by its tables (24 per value).
    pub held: u64,
    /// Bytes of spilled chunks written to the spill file.
    pub written: u64,
    /// Spilled chunks read back and decoded (cache misses).
    pub decoded: u64,
}

/// Where a spilled chunk is in the spill file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spilled {
    offset: u64,
    len: u64,
    cells: usize,
}

impl Spilled {
    /// Number of cells in the chunk.
    pub(crate) fn cells(&self) -> usize {
        self.cells
    }
}

/// Decoded chunks kept for the next reads (a server page reads rows of a
/// few neighbouring chunks; the next page reads them again).
const CACHED_CHUNKS: usize = 8;

struct FileState {
    file: File,
    end: u64,
}

/// Catalogue names met while encoding: `&'static str`s are written as an
/// index, so that they come back as the same static text.
#[derive(Default)]
struct Statics {
    list: Vec<&'static str>,
    index: HashMap<(usize, usize), u32>,
}

impl Statics {
    fn index_of(&mut self, s: &'static str) -> u32 {
        let key = (s.as_ptr() as usize, s.len());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s);
        self.index.insert(key, i);
        i
    }
}

/// One spill file shared by the tables of a generator (and of the part it
/// builds on another thread), with the count of bytes they hold.
pub(crate) struct SpillStore {
    above: u64,
    held: AtomicU64,
    decoded: AtomicU64,
    // Declared before `dir` so the file is closed before the directory
    // is removed.
    file: Mutex<FileState>,
    statics: Mutex<Statics>,
    cache: Mutex<Vec<(u64, Arc<Vec<Cell>>)>>,
    failure: Mutex<Option<String>>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for SpillStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillStore")
            .field("dir", &self.dir.path())
            .field("above", &self.above)
            .field("held", &self.held.load(Ordering::Relaxed))
            .finish()
    }
}

/// The file naming the process that owns a spill directory.
const OWNER: &str = "owner";

/// Remove the `lakehouse-source-*` directories under `parent` whose owner
/// process is gone (left by killed runs). Best effort: what cannot be read
/// or removed is left as it is.
fn sweep_abandoned(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.starts_with("lakehouse-source-"))
        {
            continue;
        }
        let owner = std::fs::read_to_string(entry.path().join(OWNER))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        if owner.is_some_and(|pid| !process_runs(pid)) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::debug!(dir = %entry.path().display(), "removed an abandoned source spill directory")
                }
                Err(e) => {
                    tracing::debug!(dir = %entry.path().display(), error = %e, "cannot remove an abandoned source spill directory")
                }
            }
        }
    }
}

/// Whether process `pid` exists (signal 0 probes without sending; a
/// process of another user counts as running).
fn process_runs(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: `kill` with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SpillStore {
    /// A new store in a fresh `lakehouse-source-*` directory.
    pub(crate) fn new(options: &SpillOptions) -> Result<Arc<Self>> {
        let parent = options.dir.clone().unwrap_or_else(std::env::temp_dir);
        sweep_abandoned(&parent);
        let dir = tempfile::Builder::new()
            .prefix("lakehouse-source-")
            .tempdir_in(&parent)
            .ctx(ErrorKind::Storage, || {
                format!(
                    "cannot make the source's spill directory under {}",
                    parent.display()
                )
            })?;
        let owner = dir.path().join(OWNER);
        std::fs::write(&owner, std::process::id().to_string()).ctx(ErrorKind::Storage, || {
            format!("cannot write {}", owner.display())
        })?;
        let path = dir.path().join("chunks.bin");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .ctx(ErrorKind::Storage, || {
                format!("cannot create the spill file {}", path.display())
            })?;
        Ok(Arc::new(Self {
            above: options.above,
            held: AtomicU64::new(0),
            decoded: AtomicU64::new(0),
            file: Mutex::new(FileState { file, end: 0 }),
            statics: Mutex::new(Statics::default()),
            cache: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            dir,
        }))
    }

    /// The spill directory (removed when the store is dropped).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Count `bytes` more (or, negative, fewer) bytes held in memory.
    pub(crate) fn hold(&self, bytes: i64) {
        if bytes >= 0 {
            self.held.fetch_add(bytes as u64, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(bytes.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Bytes of cells held in memory by the tables sharing the store.
    pub(crate) fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether full chunks of append-only tables should be spilled now.
    pub(crate) fn over_budget(&self) -> bool {
        self.held() > self.above
    }

    /// Spilled chunks written so far, as bytes of the spill file.
    pub(crate) fn spilled_bytes(&self) -> u64 {
        lock(&self.file).end
    }

    /// What the store holds and did.
    pub(crate) fn stats(&self) -> SpillStats {
        SpillStats {
            held: self.held(),
            written: self.spilled_bytes(),
            decoded: self.decoded.load(Ordering::Relaxed),
        }
    }

    /// The first write failure, if any (see the module docs).
    pub(crate) fn failure(&self) -> Result<()> {
        match &*lock(&self.failure) {
            None => Ok(()),
            Some(message) => Err(Error::new(ErrorKind::Storage, message.clone())),
        }
    }

    /// Write `cells` (a full chunk) at the end of the spill file.
    pub(crate) fn write(&self, cells: &[Cell]) -> Result<Spilled> {
        let mut buf = Vec::with_capacity(cells.len() * 6);
        {
            let mut statics = lock(&self.statics);
            for c in cells {
                encode(c, &mut statics, &mut buf);
            }
        }
        let mut f = lock(&self.file);
        let offset = f.end;
        let written = f
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| f.file.write_all(&buf));
        if let Err(e) = written {
            let err = Error::new(
                ErrorKind::Storage,
                format!(
                    "cannot spill a chunk of the embedded source to {}",
                    self.dir.path().display()
                ),
            )
            .with_source(e);
            let mut failure = lock(&self.failure);
            if failure.is_none() {
                *failure = Some(format!("{err:#}"));
            }
            return Err(err);
        }
        f.end += buf.len() as u64;
        Ok(Spilled {
            offset,
            len: buf.len() as u64,
            cells: cells.len(),
        })
    }

    /// Read a spilled chunk back (from the cache of recent chunks if it is
    /// there).
    pub(crate) fn read(&self, chunk: &Spilled) -> Result<Arc<Vec<Cell>>> {
        self.failure()?;
        {
            let mut cache = lock(&self.cache);
            if let Some(i) = cache.iter().position(|(o, _)| *o == chunk.offset) {
                let hit = cache.remove(i);
                let cells = Arc::clone(&hit.1);
                cache.push(hit);
                return Ok(cells);
            }
        }
        let len = usize::try_from(chunk.len)
            .map_err(|_| Error::internal("spilled chunk larger than memory"))?;
        let mut buf = vec![0u8; len];
        {
            let mut f = lock(&self.file);
            f.file
                .seek(SeekFrom::Start(chunk.offset))
                .and_then(|_| f.file.read_exact(&mut buf))
                .ctx(ErrorKind::Storage, || {
                    format!(
                        "cannot read a spilled chunk of the embedded source from {}",
                        self.dir.path().display()
                    )
                })?;
        }
        self.decoded.fetch_add(1, Ordering::Relaxed);
        let cells = {
            let statics = lock(&self.statics);
            Arc::new(decode(&buf, chunk.cells, &statics.list)?)
        };
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHED_CHUNKS {
            cache.remove(0);
        }
        cache.push((chunk.offset, Arc::clone(&cells)));
        Ok(cells)
    }
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn encode(cell: &Cell, statics: &mut Statics, out: &mut Vec<u8>) {
    match cell {
        Cell::Null => out.push(0),
        Cell::Bool(false) => out.push(1),
        Cell::Bool(true) => out.push(2),
        Cell::Int(i) => {
            out.push(3);
            put_varint(((*i << 1) ^ (*i >> 63)) as u64, out);
        }
        Cell::Float(f) => {
            out.push(4);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Cell::Date(d) => {
            out.push(5);
            out.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
        }
        Cell::Timestamp(d) => {
            out.push(6);
            out.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
        }
        Cell::Guid(g) => {
            out.push(7);
            out.extend_from_slice(g);
        }
        Cell::Static(s) => {
            out.push(8);
            put_varint(u64::from(statics.index_of(s)), out);
        }
        Cell::Text(s) => {
            out.push(9);
            put_varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// A cursor over an encoded chunk; every read checks the bounds.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("spilled chunk of the embedded source is corrupt: {what}"),
    )
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn date(&mut self) -> Result<NaiveDate> {
        let days = i32::from_le_bytes(self.array()?);
        NaiveDate::from_num_days_from_ce_opt(days).ok_or_else(|| corrupt("date out of range"))
    }
}

fn decode(buf: &[u8], cells: usize, statics: &[&'static str]) -> Result<Vec<Cell>> {
    let mut r = Reader { buf, at: 0 };
    let mut out = Vec::with_capacity(cells);
    for _ in 0..cells {
        let cell = match r.byte()? {
            0 => Cell::Null,
            1 => Cell::Bool(false),
            2 => Cell::Bool(true),
            3 => {
                let z = r.varint()?;
                Cell::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            4 => Cell::Float(f64::from_bits(u64::from_le_bytes(r.array()?))),
            5 => Cell::Date(r.date()?),
            6 => Cell::Timestamp(r.date()?),
            7 => Cell::Guid(r.array()?),
            8 => {
                let i = usize::try_from(r.varint()?).map_err(|_| corrupt("name index"))?;
                Cell::Static(statics.get(i).ok_or_else(|| corrupt("unknown name"))?)
            }
            9 => {
                let n = usize::try_from(r.varint()?).map_err(|_| corrupt("text length"))?;
                let text =
                    std::str::from_utf8(r.take(n)?).map_err(|_| corrupt("text not UTF-8"))?;
                Cell::Text(text.into())
            }
            t => return Err(corrupt(&format!("unknown tag {t}"))),
        };
        out.push(cell);
    }
    if r.at != buf.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Cell> {
        vec![
            Cell::Null,
            Cell::Bool(true),
            Cell::Bool(false),
            Cell::Int(0),
            Cell::Int(-1),
            Cell::Int(i64::MIN),
            Cell::Int(i64::MAX),
            Cell::Float(-0.0),
            Cell::Float(1234.5678),
            Cell::Date(NaiveDate::from_ymd_opt(2014, 6, 30).expect("date")),
            Cell::Timestamp(NaiveDate::from_ymd_opt(1, 1, 1).expect("date")),
            Cell::Guid([7; 16]),
            Cell::Static("Mountain-100"),
            Cell::Text("héllo, wörld".into()),
            Cell::Text("".into()),
        ]
    }

    #[test]
    fn cells_round_trip_exactly() {
        let store = SpillStore::new(&SpillOptions::above(0)).expect("store");
        let cells = sample();
        let a = store.write(&cells).expect("write");
        let b = store.write(&cells[3..]).expect("write");
        // Read the second first, then past the cache.
        assert_eq!(*store.read(&b).expect("read"), cells[3..]);
        assert_eq!(*store.read(&a).expect("read"), cells);
        store.cache.lock().expect("cache").clear();
        let back = store.read(&a).expect("read");
        assert_eq!(*back, cells);
        assert_eq!(back[8].to_string(), "1234.5678");
        // Catalogue names come back as the same static text.
        let (Cell::Static(x), Cell::Static(y)) = (&back[12], &cells[12]) else {
            panic!("static names")
        };
        assert!(std::ptr::eq(*x, *y));
        assert_eq!(
            store.spilled_bytes(),
            (a.len + b.len),
            "chunks are appended"
        );
    }

    #[test]
    fn directory_is_removed_with_the_store() {
        let parent = tempfile::tempdir().expect("parent");
        let store = SpillStore::new(&SpillOptions {
            above: 0,
            dir: Some(parent.path().to_path_buf()),
        })
        .expect("store");
        let dir = store.dir().to_path_buf();
        assert!(
            dir.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("lakehouse-source-"))
        );
        store.write(&sample()).expect("write");
        assert!(dir.join("chunks.bin").exists());
        drop(store);
        assert!(!dir.exists());
    }

    /// A new store removes the spill directories of processes that are
    /// gone, and keeps those of running ones and those it cannot tell.
    #[test]
    fn abandoned_directories_are_swept() {
        let parent = tempfile::tempdir().expect("parent");
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let dead = child.id();
        child.wait().expect("wait");
        let make = |name: &str, owner: Option<String>| {
            let d = parent.path().join(name);
            std::fs::create_dir(&d).expect("dir");
            std::fs::write(d.join("chunks.bin"), b"x").expect("chunks");
            if let Some(o) = owner {
                std::fs::write(d.join(OWNER), o).expect("owner");
            }
            d
        };
        let abandoned = make("lakehouse-source-dead", Some(dead.to_string()));
        let live = make(
            "lakehouse-source-live",
            Some(std::process::id().to_string()),
        );
        let unknown = make("lakehouse-source-old", None);
        let other = make("something-else", Some(dead.to_string()));
        let store = SpillStore::new(&SpillOptions {
            above: 0,
            dir: Some(parent.path().to_path_buf()),
        })
        .expect("store");
        assert!(!abandoned.exists(), "the dead process's directory goes");
        assert!(live.exists() && unknown.exists() && other.exists());
        assert_eq!(
            std::fs::read_to_string(store.dir().join(OWNER)).expect("owner"),
            std::process::id().to_string()
        );
    }

    #[test]
    fn corrupt_chunks_are_errors() {
        let statics = ["x"];
        assert!(decode(&[9, 5, b'a'], 1, &statics).is_err());
        assert!(decode(&[8, 3], 1, &statics).is_err());
        assert!(decode(&[42], 1, &statics).is_err());
        assert!(decode(&[0, 0], 1, &statics).is_err());
        assert_eq!(
            decode(&[8, 0], 1, &statics).expect("ok"),
            [Cell::Static("x")]
        );
    }
}
