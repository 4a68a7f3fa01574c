//! `maintain` (warehouse upkeep on demand) and the upkeep flags `elt`
//! shares with it; their terminal output.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};

use super::{Cli, record_batch};
use crate::budget::format_size;
use crate::dag::upkeep::{MaintainOptions, UpkeepReport, maintain};
use crate::error::Result;
use crate::project::parse_duration;
use crate::storage::upkeep::UpkeepPolicy;

/// How upkeep runs; each flag overrides the project's `upkeep:` setting.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpkeepArgs {
    /// Keep snapshots younger than this (e.g. 7d, 12h, 0s): how far back `query --as-of` reaches.
    #[arg(long, env = "LAKEHOUSE_UPKEEP_RETAIN", value_name = "DURATION")]
    pub retain: Option<String>,
    /// Always keep this many newest snapshots of each table (at least 1).
    #[arg(long, env = "LAKEHOUSE_UPKEEP_KEEP_LAST", value_name = "N")]
    pub keep_last: Option<usize>,
    /// Delete unreferenced files only when older than this (longer than any run).
    #[arg(long, env = "LAKEHOUSE_UPKEEP_ORPHAN_AGE", value_name = "DURATION")]
    pub orphan_age: Option<String>,
    /// Do not compact (rewrite small files and deleted rows).
    #[arg(long)]
    pub no_compact: bool,
}

impl UpkeepArgs {
    /// The project's policy with these flags applied.
    pub fn policy(&self, cli: &Cli) -> Result<UpkeepPolicy> {
        let mut p = cli.project_dir()?.upkeep.policy.clone();
        if let Some(r) = &self.retain {
            p.retain = parse_duration("--retain", r)?;
        }
        if let Some(n) = self.keep_last {
            if n == 0 {
                return Err(crate::error::Error::invalid(
                    "--keep-last: at least 1 (the current snapshot)",
                ));
            }
            p.keep_last = n;
        }
        if let Some(a) = &self.orphan_age {
            p.orphan_age = parse_duration("--orphan-age", a)?;
        }
        if self.no_compact {
            p.compact = false;
        }
        Ok(p)
    }
}

/// Arguments of `maintain`.
#[derive(Debug, clap::Args)]
pub struct MaintainArgs {
    /// Only tables whose <namespace>.<table> matches this glob (e.g. 'dar.*').
    #[arg(long, value_name = "GLOB")]
    pub tables: Option<String>,
    /// List what would be compacted, expired and deleted, and the bytes freed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub upkeep: UpkeepArgs,
}

pub(super) async fn run_maintain(cli: &Cli, args: &MaintainArgs) -> Result<()> {
    let wh = cli.open_warehouse()?;
    let mut policy = args.upkeep.policy(cli)?;
    policy.dry_run = args.dry_run;
    let options = MaintainOptions {
        tables: args.tables.clone(),
        policy,
        budget: cli.budget()?,
        orphans_when_due: false,
    };
    let report = maintain(&wh, &options, cli.lock_ttl).await?;
    if args.dry_run {
        for t in &report.tables {
            let name = t.table.as_ref().map(|n| n.to_string()).unwrap_or_default();
            for (path, bytes) in t.expired_files.iter().chain(&t.orphan_files) {
                out!("{name}\t{path}\t{}", format_size(*bytes));
            }
        }
        for (path, bytes) in &report.lock_entries {
            out!("run lock\t{path}\t{}", format_size(*bytes));
        }
    }
    print_report(&report, args.dry_run)?;
    let failed = report.failures();
    if !failed.is_empty() {
        return Err(crate::error::Error::new(
            crate::error::ErrorKind::Storage,
            format!(
                "upkeep failed for {} table(s) (the others were kept up):\n{}",
                failed.len(),
                failed.join("\n")
            ),
        ));
    }
    Ok(())
}

/// The tables upkeep touched, one row each, and a line of totals.
pub(super) fn print_report(report: &UpkeepReport, dry_run: bool) -> Result<()> {
    let touched: Vec<_> = report.tables.iter().filter(|t| t.did_anything()).collect();
    if !touched.is_empty() {
        let text = |f: &dyn Fn(&crate::storage::upkeep::TableUpkeep) -> String| {
            Arc::new(StringArray::from_iter_values(touched.iter().map(|t| f(t))))
        };
        let batch = record_batch(vec![
            (
                "table",
                text(&|t| t.table.as_ref().map(|n| n.to_string()).unwrap_or_default()),
            ),
            (
                "compacted",
                text(&|t| match &t.compaction {
                    Some(c) => format!(
                        "{} data + {} delete files ({}) -> {}",
                        c.data_files,
                        c.delete_files,
                        format_size(c.bytes),
                        if dry_run {
                            "?".to_string()
                        } else {
                            c.files_out.to_string()
                        }
                    ),
                    None => String::new(),
                }),
            ),
            (
                "expired snapshots",
                Arc::new(Int64Array::from_iter_values(
                    touched.iter().map(|t| t.expired_snapshots as i64),
                )),
            ),
            (
                "files deleted",
                Arc::new(Int64Array::from_iter_values(
                    touched.iter().map(|t| t.deleted().0 as i64),
                )),
            ),
            ("bytes freed", text(&|t| format_size(t.deleted().1))),
        ])?;
        out!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
    }
    for t in &report.tables {
        for n in &t.notes {
            eprintln!("note: {n}");
        }
    }

    let (files, bytes) = report.deleted();
    let compacted = report
        .tables
        .iter()
        .filter(|t| t.compaction.is_some())
        .count();
    let expired: usize = report.tables.iter().map(|t| t.expired_snapshots).sum();
    out!(
        "upkeep{}: {} tables, {compacted} compacted, {expired} snapshots expired, {files} files {} ({}), {:.1}s",
        if dry_run { " (dry run)" } else { "" },
        report.tables.len(),
        if dry_run { "to delete" } else { "deleted" },
        format_size(bytes),
        report.seconds
    );
    Ok(())
}
