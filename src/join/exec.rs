//! `PitJoinExec`: the physical PIT join.
//!
//! # Strategies and input contracts
//!
//! The strategy is chosen at planning time from the session option
//! `lakehouse.pit_join.strategy` ([`super::options`]; its default `auto`
//! resolves to `partitioned_hash` or `sort` from the right input's
//! statistics) and
//! shown in `EXPLAIN` (`strategy=...`). It decides what the operator requires of its inputs,
//! and so which operators DataFusion's `EnforceDistribution` and
//! `EnforceSorting` insert below it:
//!
//! * `hash`: left input `UnspecifiedDistribution`, no ordering:
//!   the left side streams in whatever partitioning and order it has
//!   (DataFusion may round-robin it for parallelism), with no repartition
//!   and no sort. Right input `SinglePartition` (a `CoalescePartitionsExec`
//!   when it has several): the first output partition to execute starts the
//!   build of one hash table of the whole right side, shared by every output
//!   partition ([`super::hash`]). Output partition `i` probes left partition
//!   `i`. Needs the right side in memory (checked against the memory pool;
//!   a clear `ResourcesExhausted` error otherwise).
//! * `partitioned_hash`: both inputs `HashPartitioned` on their key
//!   expressions (DataFusion inserts `RepartitionExec`s), no ordering;
//!   partition `i` builds a table of right partition `i` and probes left
//!   partition `i` with it. All rows of a key meet in the same partition
//!   index on both sides. More parallel build and smaller tables, at the cost
//!   of repartitioning the left side.
//! * `sort`: both inputs `HashPartitioned` on the keys and sorted by
//!   `keys ASC NULLS FIRST` (`SortExec`s, which spill under memory
//!   pressure, or an existing order); partition `i` merges partition `i` of
//!   each side key group by key ([`super::stream`]), holding only one right
//!   key group in memory. The sweep sorts each right key group by
//!   `(right_start, right_end)` itself and needs no order of the left rows
//!   within a key, so the sorts are plain key sorts.
//!
//! All strategies return the same rows (the property tests check each
//! against DataFusion's built-in plan).
//!
//! # Output
//!
//! Left columns, right columns (nullable in a left join), then optional
//! intersection columns `max(left_start, right_start)`,
//! `min(left_end, right_end)`; DataFusion's projection pushdown may embed a
//! projection of those (`projection=[...]`), and then only the projected
//! columns are gathered. Output batches have at most the session's
//! `batch_size` rows. No output ordering is claimed. The output has as many
//! partitions as the left input.
//!
//! # Metrics
//!
//! All strategies: `output_rows`, `elapsed_compute`, `left_input_rows`,
//! `right_input_rows`, `candidate_pairs` (pairs satisfying keys and range,
//! before the residual filter), `build_output_time` (gathering columns,
//! residual filter), `peak_mem_used` (bytes held by the operator, also
//! registered with the memory pool; for `hash` the shared table counts once,
//! on the partition that started its build). Hash strategies add
//! `build_time` (collecting and indexing the right side, excluding waiting
//! for it) and `probe_time` (key lookups and range search); `sort` adds
//! `sweep_time` (key merge and range search, including the per-group sorts).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DataFusionError, Result, internal_err, plan_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, Partitioning, PhysicalExprRef, PhysicalSortExpr,
};
use datafusion::physical_expr_common::sort_expr::OrderingRequirements;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::projection::{
    EmbeddedProjection, ProjectionExec, try_embed_projection,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, SendableRecordBatchStream,
};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::bounds::is_supported_bound_type;
use super::hash::{
    HashProbeStream, HashTable, KeyMode, ProbeSpec, SideExprs, build_table, hash_metrics,
};
use super::logical::PitJoinType;
use super::options::PitJoinStrategy;
use super::output::OutputSpec;
use super::range::PhysicalRange;
use super::stream::PitJoinStream;

/// The right side's table of `strategy=hash`, built once and shared by all
/// output partitions.
type SharedTable =
    Shared<BoxFuture<'static, std::result::Result<Arc<HashTable>, Arc<DataFusionError>>>>;

/// The physical point-in-time / interval-overlap join.
#[derive(Debug)]
pub struct PitJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    on: Vec<(PhysicalExprRef, PhysicalExprRef)>,
    range: PhysicalRange,
    filter: Option<PhysicalExprRef>,
    join_type: PitJoinType,
    intersection: Option<(String, String)>,
    join_schema: SchemaRef,
    /// Join schema plus intersection columns.
    full_schema: SchemaRef,
    /// Output columns (indices into `full_schema`), embedded by DataFusion's
    /// projection pushdown so unused columns are never gathered.
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    left_sort: LexOrdering,
    right_sort: LexOrdering,
    strategy: PitJoinStrategy,
    /// `strategy=hash`: the table, once the first partition executes.
    shared_table: Mutex<Option<SharedTable>>,
    metrics: ExecutionPlanMetricsSet,
    cache: Arc<PlanProperties>,
}

/// `(rows, bytes)` of a plan's output from its statistics (exact or
/// estimated), each `None` when unknown.
pub fn estimated_size(plan: &dyn ExecutionPlan) -> (Option<usize>, Option<usize>) {
    match plan.partition_statistics(None) {
        Ok(stats) => (
            stats.num_rows.get_value().copied(),
            stats.total_byte_size.get_value().copied(),
        ),
        Err(_) => (None, None),
    }
}

fn expr_type(expr: &PhysicalExprRef, schema: &Schema) -> Result<DataType> {
    expr.data_type(schema)
}

impl PitJoinExec {
    /// Validate and build. `filter` is evaluated against left ++ right
    /// columns (the join schema without intersection columns).
    pub fn try_new(
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        on: Vec<(PhysicalExprRef, PhysicalExprRef)>,
        range: PhysicalRange,
        filter: Option<PhysicalExprRef>,
        join_type: PitJoinType,
        intersection: Option<(String, String)>,
    ) -> Result<Self> {
        let ls = left.schema();
        let rs = right.schema();
        if on.is_empty() {
            return plan_err!("PitJoinExec needs at least one equality key");
        }
        for (l, r) in &on {
            let (lt, rt) = (expr_type(l, &ls)?, expr_type(r, &rs)?);
            if lt != rt {
                return plan_err!("PitJoinExec: key types differ: {lt} vs {rt}");
            }
        }
        let t_ls = expr_type(&range.left_start, &ls)?;
        let t_le = expr_type(&range.left_end, &ls)?;
        let t_rs = expr_type(&range.right_start, &rs)?;
        let t_re = expr_type(&range.right_end, &rs)?;
        for t in [&t_ls, &t_le, &t_rs, &t_re] {
            if !is_supported_bound_type(t) {
                return plan_err!("PitJoinExec: unsupported range bound type {t}");
            }
        }
        if t_ls != t_re || t_rs != t_le {
            return plan_err!(
                "PitJoinExec: compared bounds differ in type ({t_ls} vs {t_re}, {t_rs} vs {t_le})"
            );
        }
        let right_nullable = join_type == PitJoinType::Left;
        let mut fields: Vec<Field> = ls.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(rs.fields().iter().map(|f| {
            let f = f.as_ref().clone();
            if right_nullable {
                f.with_nullable(true)
            } else {
                f
            }
        }));
        let join_schema = Arc::new(Schema::new(fields.clone()));
        if let Some(f) = &filter {
            let t = f.data_type(&join_schema)?;
            if t != DataType::Boolean {
                return plan_err!("PitJoinExec: filter must be boolean, got {t}");
            }
        }
        let full_schema = match &intersection {
            None => Arc::clone(&join_schema),
            Some((from, to)) => {
                if t_ls != t_rs {
                    return plan_err!(
                        "PitJoinExec: intersection columns need all bounds of one type"
                    );
                }
                fields.push(Field::new(from, t_ls.clone(), true));
                fields.push(Field::new(to, t_ls, true));
                Arc::new(Schema::new(fields))
            }
        };
        let opts = SortOptions {
            descending: false,
            nulls_first: true,
        };
        let sort = |e: &PhysicalExprRef| PhysicalSortExpr::new(Arc::clone(e), opts);
        // The sweep only needs both sides grouped by key (it sorts each right
        // key group by start itself, see `stream`), so both sides are sorted
        // by the keys alone: a cheaper sort than a lexicographic one.
        let left_sort: Vec<PhysicalSortExpr> = on.iter().map(|(l, _)| sort(l)).collect();
        let right_sort: Vec<PhysicalSortExpr> = on.iter().map(|(_, r)| sort(r)).collect();
        let (Some(left_sort), Some(right_sort)) =
            (LexOrdering::new(left_sort), LexOrdering::new(right_sort))
        else {
            return internal_err!("PitJoinExec: empty sort requirement");
        };
        let schema = Arc::clone(&full_schema);
        let cache = Arc::new(Self::compute_properties(&left, &right, &schema));
        Ok(Self {
            left,
            right,
            on,
            range,
            filter,
            join_type,
            intersection,
            join_schema,
            full_schema,
            projection: None,
            schema,
            left_sort,
            right_sort,
            strategy: PitJoinStrategy::Sort,
            shared_table: Mutex::new(None),
            metrics: ExecutionPlanMetricsSet::new(),
            cache,
        })
    }

    /// Execute with `strategy` (without this call: [`PitJoinStrategy::Sort`]);
    /// it decides the input distribution and ordering the plan requires.
    /// [`PitJoinStrategy::Auto`] is resolved here from the right input's
    /// statistics as if the memory pool were unbounded; the planner resolves
    /// it with the session's pool limit first
    /// ([`PitJoinStrategy::resolve_auto`]).
    pub fn with_strategy(mut self, strategy: PitJoinStrategy) -> Self {
        let (rows, bytes) = estimated_size(self.right.as_ref());
        self.strategy = strategy.resolve_auto(rows, bytes, None);
        self
    }

    /// The execution strategy.
    pub fn strategy(&self) -> PitJoinStrategy {
        self.strategy
    }

    fn compute_properties(
        left: &Arc<dyn ExecutionPlan>,
        right: &Arc<dyn ExecutionPlan>,
        schema: &SchemaRef,
    ) -> PlanProperties {
        let partitions = left.output_partitioning().partition_count();
        let boundedness = if left.boundedness().is_unbounded() || right.boundedness().is_unbounded()
        {
            Boundedness::Unbounded {
                requires_infinite_memory: true,
            }
        } else {
            Boundedness::Bounded
        };
        PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            boundedness,
        )
    }

    /// Keep only the given output columns (indices into the unprojected
    /// output: left ++ right ++ intersection). Composes with an existing
    /// projection.
    pub fn with_projection(&self, projection: Option<Vec<usize>>) -> Result<Self> {
        let projection = match (projection, &self.projection) {
            (None, _) => None,
            (Some(p), None) => Some(p),
            (Some(p), Some(old)) => Some(
                p.iter()
                    .map(|&i| {
                        old.get(i).copied().ok_or_else(|| {
                            DataFusionError::Plan(format!(
                                "PitJoinExec: projection index {i} out of range"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let schema = match &projection {
            None => Arc::clone(&self.full_schema),
            Some(p) => Arc::new(self.full_schema.project(p)?),
        };
        Ok(Self {
            left: Arc::clone(&self.left),
            right: Arc::clone(&self.right),
            on: self.on.clone(),
            range: self.range.clone(),
            filter: self.filter.clone(),
            join_type: self.join_type,
            intersection: self.intersection.clone(),
            join_schema: Arc::clone(&self.join_schema),
            full_schema: Arc::clone(&self.full_schema),
            cache: Arc::new(Self::compute_properties(&self.left, &self.right, &schema)),
            projection,
            schema,
            left_sort: self.left_sort.clone(),
            right_sort: self.right_sort.clone(),
            strategy: self.strategy,
            shared_table: Mutex::new(None),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The embedded output projection, if any.
    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }

    /// Left input.
    pub fn left(&self) -> &Arc<dyn ExecutionPlan> {
        &self.left
    }
    /// Right input.
    pub fn right(&self) -> &Arc<dyn ExecutionPlan> {
        &self.right
    }
    /// Equality keys.
    pub fn on(&self) -> &[(PhysicalExprRef, PhysicalExprRef)] {
        &self.on
    }
    /// The range condition.
    pub fn range(&self) -> &PhysicalRange {
        &self.range
    }
    /// Residual filter over left ++ right.
    pub fn filter(&self) -> Option<&PhysicalExprRef> {
        self.filter.as_ref()
    }
    /// Join type.
    pub fn join_type(&self) -> PitJoinType {
        self.join_type
    }
    /// Intersection column names.
    pub fn intersection(&self) -> Option<&(String, String)> {
        self.intersection.as_ref()
    }
    /// Left ++ right columns (right nullable in a left join): the schema
    /// the residual filter is evaluated against.
    pub fn join_schema(&self) -> &SchemaRef {
        &self.join_schema
    }

    /// How the hash strategies represent the keys (from their types, one
    /// per key pair).
    fn key_mode(&self) -> Result<KeyMode> {
        let ls = self.left.schema();
        let types = self
            .on
            .iter()
            .map(|(l, _)| l.data_type(&ls))
            .collect::<Result<Vec<_>>>()?;
        Ok(KeyMode::for_types(types))
    }

    /// `strategy=hash` and `strategy=partitioned_hash`: probe this left
    /// partition against the right side's table (shared, or this
    /// partition's own).
    fn execute_hash(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let key_mode = self.key_mode()?;
        let right_exprs = SideExprs {
            keys: self.on.iter().map(|(_, r)| Arc::clone(r)).collect(),
            start: Arc::clone(&self.range.right_start),
            end: Arc::clone(&self.range.right_end),
        };
        let left_exprs = SideExprs {
            keys: self.on.iter().map(|(l, _)| Arc::clone(l)).collect(),
            start: Arc::clone(&self.range.left_start),
            end: Arc::clone(&self.range.left_end),
        };
        let (build_metrics, baseline, counts, times) = hash_metrics(&self.metrics, partition);
        let peak_mem = build_metrics.peak_mem.clone();
        let pool = Arc::clone(context.memory_pool());
        let table = if self.strategy == PitJoinStrategy::Hash {
            let mut slot = self.shared_table.lock().map_err(|_| {
                DataFusionError::Internal("PitJoinExec: shared table lock poisoned".into())
            })?;
            let shared = match slot.as_ref() {
                Some(shared) => shared.clone(),
                None => {
                    let right = self.right.execute(0, Arc::clone(&context))?;
                    let shared = build_table(
                        right,
                        right_exprs,
                        key_mode.clone(),
                        Arc::clone(&pool),
                        partition,
                        build_metrics,
                    )
                    .map(|r| r.map(Arc::new).map_err(Arc::new))
                    .boxed()
                    .shared();
                    *slot = Some(shared.clone());
                    shared
                }
            };
            shared.map(|r| r.map_err(DataFusionError::Shared)).boxed()
        } else {
            let right = self.right.execute(partition, Arc::clone(&context))?;
            build_table(
                right,
                right_exprs,
                key_mode.clone(),
                Arc::clone(&pool),
                partition,
                build_metrics,
            )
            .map(|r| r.map(Arc::new))
            .boxed()
        };
        let left = self.left.execute(partition, Arc::clone(&context))?;
        HashProbeStream::try_new(ProbeSpec {
            left,
            table,
            exprs: left_exprs,
            key_mode,
            start_inclusive: self.range.start_inclusive,
            end_inclusive: self.range.end_inclusive,
            join_type: self.join_type,
            output: OutputSpec {
                range: self.range.clone(),
                filter: self.filter.clone(),
                intersection: self.intersection.is_some(),
                join_schema: Arc::clone(&self.join_schema),
                full_schema: Arc::clone(&self.full_schema),
                projection: self.projection.clone(),
                schema: Arc::clone(&self.schema),
                n_left: self.left.schema().fields().len(),
            },
            batch_size: context.session_config().batch_size(),
            pool,
            partition,
            baseline,
            counts,
            times,
            peak_mem,
        })
    }
}

impl DisplayAs for PitJoinExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let on = self
            .on
            .iter()
            .map(|(l, r)| format!("({l}, {r})"))
            .collect::<Vec<_>>()
            .join(", ");
        let op = |inclusive: bool| if inclusive { "<=" } else { "<" };
        let r = &self.range;
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "PitJoinExec: strategy={}, join_type={}, on=[{on}], range={:?}(right.{} {} left.{} AND left.{} {} right.{})",
                    self.strategy,
                    self.join_type,
                    r.kind,
                    r.right_start,
                    op(r.start_inclusive),
                    r.left_end,
                    r.left_start,
                    op(r.end_inclusive),
                    r.right_end
                )?;
                if let Some(filter) = &self.filter {
                    write!(f, ", filter={filter}")?;
                }
                if let Some((from, to)) = &self.intersection {
                    write!(f, ", intersection=[{from}, {to}]")?;
                }
                if let Some(p) = &self.projection {
                    let names = p
                        .iter()
                        .filter_map(|&i| {
                            self.full_schema
                                .fields()
                                .get(i)
                                .map(|f| format!("{}@{i}", f.name()))
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    write!(f, ", projection=[{names}]")?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => {
                writeln!(f, "strategy={}", self.strategy)?;
                writeln!(f, "join_type={}", self.join_type)?;
                writeln!(f, "on={on}")?;
                write!(f, "range={:?}", r.kind)
            }
        }
    }
}

impl ExecutionPlan for PitJoinExec {
    fn name(&self) -> &str {
        "PitJoinExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        if self.strategy == PitJoinStrategy::Hash {
            return vec![
                Distribution::UnspecifiedDistribution,
                Distribution::SinglePartition,
            ];
        }
        let (l, r): (Vec<_>, Vec<_>) = self
            .on
            .iter()
            .map(|(l, r)| (Arc::clone(l), Arc::clone(r)))
            .unzip();
        vec![
            Distribution::HashPartitioned(l),
            Distribution::HashPartitioned(r),
        ]
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        if self.strategy != PitJoinStrategy::Sort {
            return vec![None, None];
        }
        vec![
            Some(OrderingRequirements::from(self.left_sort.clone())),
            Some(OrderingRequirements::from(self.right_sort.clone())),
        ]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false, false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [left, right] = <[_; 2]>::try_from(children).map_err(|c| {
            DataFusionError::Internal(format!("PitJoinExec needs 2 children, got {}", c.len()))
        })?;
        Ok(Arc::new(
            Self::try_new(
                left,
                right,
                self.on.clone(),
                self.range.clone(),
                self.filter.clone(),
                self.join_type,
                self.intersection.clone(),
            )?
            .with_projection(self.projection.clone())?
            .with_strategy(self.strategy),
        ))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let lp = self.left.output_partitioning().partition_count();
        let rp = self.right.output_partitioning().partition_count();
        if self.strategy == PitJoinStrategy::Hash {
            if rp != 1 {
                return internal_err!(
                    "PitJoinExec: strategy=hash needs a single right partition, got {rp}"
                );
            }
        } else if lp != rp {
            return internal_err!(
                "PitJoinExec: partition count mismatch {lp} != {rp}; inputs must be hash-partitioned alike"
            );
        }
        if self.strategy == PitJoinStrategy::Sort {
            let left = self.left.execute(partition, Arc::clone(&context))?;
            let right = self.right.execute(partition, Arc::clone(&context))?;
            return PitJoinStream::try_new(
                left,
                right,
                self.on.clone(),
                self.range.clone(),
                self.filter.clone(),
                self.join_type,
                self.intersection.is_some(),
                Arc::clone(&self.join_schema),
                Arc::clone(&self.full_schema),
                self.projection.clone(),
                Arc::clone(&self.schema),
                &context,
                partition,
                &self.metrics,
            );
        }
        self.execute_hash(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn try_swapping_with_projection(
        &self,
        projection: &ProjectionExec,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        try_embed_projection(projection, self)
    }
}

impl EmbeddedProjection for PitJoinExec {
    fn with_projection(&self, projection: Option<Vec<usize>>) -> Result<Self> {
        PitJoinExec::with_projection(self, projection)
    }
}
