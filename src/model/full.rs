//! The full-build logical plan of every model over the warehouse's current
//! tables: what `init` and `transform` compute for each model before it is
//! written (a frame's rows sorted by its PIT hook, as the build streams
//! them). For shipping a model to another process ([`crate::codec`]) and
//! for inspecting what a build runs.
//!
//! Invariant: executing a model's plan gives the rows a full build of that
//! model writes from the same input snapshots.

use std::collections::HashMap;

use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};

use super::dar::{Dar, DarKind, DarModel};
use super::das;
use super::frame::frame_plan;
use super::project::Project;
use super::tables::{DAB, loaded_scan_plan};
use crate::error::Result;
use crate::storage::{AsOf, TableName, Warehouse};

/// One model and its full-build plan.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub table: TableName,
    pub plan: LogicalPlan,
}

/// `plan` sorted by `columns` (ascending, NULLs first); unchanged when
/// there are none.
pub(crate) fn sorted_plan(plan: LogicalPlan, columns: &[String]) -> Result<LogicalPlan> {
    if columns.is_empty() {
        return Ok(plan);
    }
    Ok(LogicalPlanBuilder::from(plan)
        .sort(
            columns
                .iter()
                .map(|c| datafusion::logical_expr::ident(c.as_str()).sort(true, true)),
        )?
        .build()?)
}

/// The columns a DAR model's rows are written sorted by: the version they
/// belong to (the key `elt` replaces them by). None for the unified
/// bridge, written clustered by peripheral (which its replaces test per
/// row group; sorting its ~1.25 M rows of 165 columns at scale 1 doubled
/// `init`'s time in it), nor for the calendar.
pub(crate) fn write_order(dar: &Dar<'_>, model: &DarModel) -> Vec<String> {
    match model.kind {
        DarKind::Bridge(i) | DarKind::Event(i) | DarKind::Peripheral(i) => {
            vec![dar.project.model.frames[i].primary().pit_name()]
        }
        DarKind::Unified | DarKind::Calendar => vec![],
    }
}

/// Every model's full-build plan over the current tables: the frames, then
/// the DAR models in build order. Every input must exist (a built
/// warehouse).
pub async fn full_plans(wh: &Warehouse, project: &Project) -> Result<Vec<ModelPlan>> {
    let mut out = Vec::new();
    for frame in &project.model.frames {
        let resource = project.resource_of(frame)?;
        let das_table = wh
            .load_table(&TableName::new(das::NAMESPACE, frame.source_table.clone())?)
            .await?;
        let (scan, _) = loaded_scan_plan(&das_table, AsOf::Latest).await?;
        let plan = frame_plan(frame, &resource.primary_key, scan, None)?;
        out.push(ModelPlan {
            table: TableName::new(DAB, frame.name.clone())?,
            plan: sorted_plan(plan, &[frame.primary().pit_name()])?,
        });
    }
    let dar = Dar::new(project)?;
    for stage in dar.stages()? {
        for model in stage {
            let mut inputs = HashMap::new();
            for (ns, name) in &model.inputs {
                let t = TableName::new(ns.clone(), name.clone())?;
                let loaded = wh.load_table(&t).await.map_err(|e| {
                    e.context(format!("reading input {t} of {}", model.qualified()))
                })?;
                inputs.insert(
                    t.to_string(),
                    loaded_scan_plan(&loaded, AsOf::Latest).await?.0,
                );
            }
            out.push(ModelPlan {
                table: TableName::new(model.namespace.clone(), model.name.clone())?,
                plan: sorted_plan(dar.plan(&model, &inputs)?, &write_order(&dar, &model))?,
            });
        }
    }
    Ok(out)
}
