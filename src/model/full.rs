//! The full-build logical plan of every model over the warehouse's current
//! tables: what `init` and `transform` compute for each model before it is
//! written. For shipping a model to another process ([`crate::codec`]) and
//! for inspecting what a build runs.
//!
//! Invariant: executing a model's plan gives the rows a full build of that
//! model writes from the same input snapshots.

use std::collections::HashMap;

use datafusion::logical_expr::LogicalPlan;

use super::dar::Dar;
use super::frame::frame_plan;
use super::project::Project;
use super::tables::{DAB, loaded_scan_plan};
use crate::das;
use crate::error::Result;
use crate::storage::{AsOf, TableName, Warehouse};

/// One model and its full-build plan.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub table: TableName,
    pub plan: LogicalPlan,
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
            plan,
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
                plan: dar.plan(&model, &inputs)?,
            });
        }
    }
    Ok(out)
}
