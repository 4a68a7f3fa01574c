//! The size of a warehouse on disk, as `bench elt` records it after every
//! run: the number of files and their total bytes under the warehouse
//! directory.
//!
//! The walk is recursive and local (`std::fs`). Counted are regular files
//! only, by their length (`metadata().len()`, not the blocks allocated);
//! directories are walked but not counted, and symbolic links are neither
//! followed nor counted, so a link out of the warehouse cannot add another
//! tree's files. A directory that does not exist measures as empty (a run
//! that wrote nothing yet); any other I/O error is an error naming the path.

use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, Result, ResultExt};

/// Files and bytes under a directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirSize {
    /// Regular files, at any depth.
    pub files: u64,
    /// Their total length in bytes.
    pub bytes: u64,
}

/// Walk `root` recursively and add up its regular files (see module docs).
pub fn measure_dir(root: &Path) -> Result<DirSize> {
    let mut size = DirSize::default();
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root => {
                return Ok(size);
            }
            r => r.ctx(ErrorKind::Storage, || {
                format!("cannot list {}", dir.display())
            })?,
        };
        for entry in entries {
            let entry = entry.ctx(ErrorKind::Storage, || {
                format!("cannot list {}", dir.display())
            })?;
            let path = entry.path();
            // `DirEntry::metadata` does not follow symbolic links.
            let meta = entry.metadata().ctx(ErrorKind::Storage, || {
                format!("cannot read the metadata of {}", path.display())
            })?;
            let kind = meta.file_type();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                size.files += 1;
                size.bytes += meta.len();
            }
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_regular_files_at_every_depth() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("wh");
        std::fs::create_dir_all(root.join("a/b/c")).expect("dirs");
        std::fs::create_dir_all(root.join("empty")).expect("dirs");
        std::fs::write(root.join("top.json"), b"12345").expect("write");
        std::fs::write(root.join("a/one.parquet"), vec![0u8; 1000]).expect("write");
        std::fs::write(root.join("a/b/two.avro"), b"").expect("write");
        std::fs::write(root.join("a/b/c/three"), vec![7u8; 24]).expect("write");
        assert_eq!(
            measure_dir(&root).expect("measure"),
            DirSize {
                files: 4,
                bytes: 1029
            }
        );
        // A subdirectory measures on its own.
        assert_eq!(
            measure_dir(&root.join("a/b")).expect("measure"),
            DirSize {
                files: 2,
                bytes: 24
            }
        );
    }

    #[test]
    fn a_missing_directory_is_empty_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            measure_dir(&tmp.path().join("not-yet")).expect("measure"),
            DirSize::default()
        );
        let root = tmp.path().join("wh");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::create_dir_all(&outside).expect("dir");
        std::fs::write(outside.join("big"), vec![0u8; 4096]).expect("write");
        std::fs::write(root.join("small"), b"abc").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("dir-link")).expect("link");
            std::os::unix::fs::symlink(outside.join("big"), root.join("file-link")).expect("link");
        }
        assert_eq!(
            measure_dir(&root).expect("measure"),
            DirSize { files: 1, bytes: 3 }
        );
    }
}
