//! Append: the base snapshot's rows all stay. Every base manifest is
//! carried over as it is; the producer then merges the small ones into the
//! commit's new manifest of the same content.

use iceberg::spec::ManifestFile;

use super::producer::SnapshotProducer;

/// Keep every manifest of the base snapshot.
pub(super) fn keep_base(p: &mut SnapshotProducer<'_>, base_manifests: &[ManifestFile]) {
    for mf in base_manifests {
        p.carried.push(mf.clone());
    }
}
