//! Helpers shared by the PIT join integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{collect, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use lakehouse::join::{PitJoinOptions, PitJoinStrategy};
use lakehouse::query::session_context_with_config;

/// One row of a test table: key, id, valid_from, valid_to, extra column.
pub type Row = (Option<i64>, i64, Option<i64>, Option<i64>, Option<i64>);

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("id", DataType::Int64, false),
        Field::new("vf", DataType::Int64, true),
        Field::new("vt", DataType::Int64, true),
        Field::new("x", DataType::Int64, true),
    ]))
}

/// Split rows into batches of `chunk` rows spread over `partitions`.
pub fn batches(rows: &[Row], chunk: usize, partitions: usize) -> Vec<Vec<RecordBatch>> {
    let schema = schema();
    let mut parts = vec![Vec::new(); partitions.max(1)];
    for (i, c) in rows.chunks(chunk.max(1)).enumerate() {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(c.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.iter().map(|r| r.2).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.iter().map(|r| r.3).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.iter().map(|r| r.4).collect::<Vec<_>>())),
        ];
        let b = RecordBatch::try_new(Arc::clone(&schema), cols).expect("valid batch");
        let n = parts.len();
        parts[i % n].push(b);
    }
    parts
}

pub fn register(ctx: &SessionContext, name: &str, rows: &[Row], chunk: usize, partitions: usize) {
    let table = MemTable::try_new(schema(), batches(rows, chunk, partitions)).expect("memtable");
    ctx.register_table(name, Arc::new(table)).expect("register");
}

/// (context with our operator, context with DataFusion's built-in plan).
pub fn contexts(target_partitions: usize, batch_size: usize) -> (SessionContext, SessionContext) {
    contexts_with(PitJoinStrategy::default(), target_partitions, batch_size)
}

/// [`contexts`] with our operator executing with `strategy`.
pub fn contexts_with(
    strategy: PitJoinStrategy,
    target_partitions: usize,
    batch_size: usize,
) -> (SessionContext, SessionContext) {
    let config = SessionConfig::new()
        .with_target_partitions(target_partitions)
        .with_batch_size(batch_size);
    (
        pit_context(strategy, config.clone()),
        SessionContext::new_with_config(config),
    )
}

/// A context with our operator executing with `strategy`.
pub fn pit_context(strategy: PitJoinStrategy, config: SessionConfig) -> SessionContext {
    session_context_with_config(
        config.with_option_extension(PitJoinOptions::with_strategy(strategy)),
    )
}

/// The physical plan of `sql` as text.
pub async fn physical_plan(ctx: &SessionContext, sql: &str) -> String {
    let df = ctx.sql(sql).await.expect("plan sql");
    let plan = df.create_physical_plan().await.expect("physical plan");
    displayable(plan.as_ref()).indent(true).to_string()
}

/// Run `sql`; returns (plan text, rows rendered as `a|b|c`, sorted).
pub async fn run(ctx: &SessionContext, sql: &str) -> (String, Vec<String>) {
    let df = ctx.sql(sql).await.expect("plan sql");
    let plan = df.create_physical_plan().await.expect("physical plan");
    let text = displayable(plan.as_ref()).indent(true).to_string();
    let out = collect(plan, ctx.task_ctx()).await.expect("execute");
    (text, render(&out))
}

pub fn render(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for i in 0..b.num_rows() {
            rows.push(
                fmts.iter()
                    .map(|f| f.value(i).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    rows.sort();
    rows
}
