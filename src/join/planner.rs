//! Physical planning of [`PitJoin`] into [`PitJoinExec`], and a
//! `QueryPlanner` that knows about it. The execution strategy comes from the
//! session's `lakehouse.pit_join.strategy` ([`super::options`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::execution::memory_pool::MemoryLimit;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

use super::exec::{PitJoinExec, estimated_size};
use super::logical::PitJoin;
use super::options::PitJoinOptions;
use super::range::PhysicalRange;

/// Plans `PitJoin` extension nodes; returns `None` for any other node so it
/// can share a planner list with other extensions.
#[derive(Debug, Default, Clone, Copy)]
pub struct PitJoinPlanner;

#[async_trait]
impl ExtensionPlanner for PitJoinPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session_state: &SessionState,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(join) = node.as_any().downcast_ref::<PitJoin>() else {
            return Ok(None);
        };
        let ([left_logical, right_logical], [left, right]) = (logical_inputs, physical_inputs)
        else {
            return Err(DataFusionError::Internal(format!(
                "PitJoin expects 2 inputs, got {} logical and {} physical",
                logical_inputs.len(),
                physical_inputs.len()
            )));
        };
        let ls = left_logical.schema();
        let rs = right_logical.schema();
        let on = join
            .on
            .iter()
            .map(|(l, r)| {
                Ok((
                    planner.create_physical_expr(l, ls, session_state)?,
                    planner.create_physical_expr(r, rs, session_state)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let range = PhysicalRange {
            kind: join.range.kind,
            left_start: planner.create_physical_expr(&join.range.left_start, ls, session_state)?,
            left_end: planner.create_physical_expr(&join.range.left_end, ls, session_state)?,
            right_start: planner.create_physical_expr(
                &join.range.right_start,
                rs,
                session_state,
            )?,
            right_end: planner.create_physical_expr(&join.range.right_end, rs, session_state)?,
            start_inclusive: join.range.start_inclusive,
            end_inclusive: join.range.end_inclusive,
        };
        let filter = join
            .filter
            .as_ref()
            .map(|f| planner.create_physical_expr(f, join.join_schema(), session_state))
            .transpose()?;
        let (right_rows, right_bytes) = estimated_size(right.as_ref());
        let pool_limit = match session_state.runtime_env().memory_pool.memory_limit() {
            MemoryLimit::Finite(limit) => Some(limit),
            MemoryLimit::Infinite | MemoryLimit::Unknown => None,
        };
        let strategy = PitJoinOptions::from_config(session_state.config())
            .strategy
            .resolve_auto(right_rows, right_bytes, pool_limit);
        Ok(Some(Arc::new(
            PitJoinExec::try_new(
                Arc::clone(left),
                Arc::clone(right),
                on,
                range,
                filter,
                join.join_type,
                join.intersection.clone(),
            )?
            .with_strategy(strategy),
        )))
    }
}

/// A `QueryPlanner` using DataFusion's default planner plus [`PitJoinPlanner`]
/// and any extra extension planners.
#[derive(Clone)]
pub struct PitQueryPlanner {
    planners: Vec<Arc<dyn ExtensionPlanner + Send + Sync>>,
}

impl fmt::Debug for PitQueryPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PitQueryPlanner")
            .field("extension_planners", &self.planners.len())
            .finish()
    }
}

impl Default for PitQueryPlanner {
    fn default() -> Self {
        Self::new()
    }
}

impl PitQueryPlanner {
    /// Planner knowing `PitJoin`.
    pub fn new() -> Self {
        Self {
            planners: vec![Arc::new(PitJoinPlanner)],
        }
    }

    /// Add another extension planner (tried after the PIT join planner).
    pub fn with_extension_planner(
        mut self,
        planner: Arc<dyn ExtensionPlanner + Send + Sync>,
    ) -> Self {
        self.planners.push(planner);
        self
    }
}

#[async_trait]
impl QueryPlanner for PitQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &SessionState,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(self.planners.clone())
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}
