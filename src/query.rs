//! SQL on a DataFusion `SessionContext` with the PIT join registered.
//!
//! [`session_context`] builds the context the CLI uses; [`run_sql`] runs a
//! script of `;`-separated statements (split by DataFusion's SQL parser, so
//! `;` inside string literals is safe; DDL such as `CREATE EXTERNAL TABLE t
//! STORED AS PARQUET LOCATION '...'` works), [`explain_sql`] shows the
//! physical plan of a script's last statement (optionally executed, with
//! metrics), and [`format_batches`] renders results as a table, CSV or JSON.

use std::str::FromStr;

use arrow::array::RecordBatch;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{collect, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};

use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::join::{with_pit_join, with_pit_join_options};

/// A session state builder with DataFusion's defaults and the PIT join; add
/// catalogs or tables before `build()`.
pub fn session_state_builder() -> SessionStateBuilder {
    with_pit_join(SessionStateBuilder::new().with_default_features())
        .with_config(with_pit_join_options(SessionConfig::new()))
}

/// A context with DataFusion's defaults and the PIT join.
pub fn session_context() -> SessionContext {
    SessionContext::new_with_state(session_state_builder().build())
}

/// A context with the PIT join, the given configuration, executing in
/// `runtime` (its memory pool and spill directory: [`crate::budget`]).
pub fn session_context_in(
    config: SessionConfig,
    runtime: std::sync::Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> SessionContext {
    SessionContext::new_with_state(
        session_state_builder()
            .with_config(with_pit_join_options(config))
            .with_runtime_env(runtime)
            .build(),
    )
}

/// A context with the PIT join and the given configuration.
pub fn session_context_with_config(config: SessionConfig) -> SessionContext {
    SessionContext::new_with_state(
        session_state_builder()
            .with_config(with_pit_join_options(config))
            .build(),
    )
}

/// Split a script into statements with DataFusion's parser.
pub fn split_statements(sql: &str) -> Result<Vec<Statement>> {
    let statements = DFParser::parse_sql(sql)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, "cannot parse SQL").with_source(e))?;
    if statements.is_empty() {
        return Err(Error::invalid("no SQL statement given"));
    }
    Ok(statements.into_iter().collect())
}

/// Run every statement of `sql` in order; returns each statement (as SQL
/// text) with its result batches (DDL returns no rows).
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<(String, Vec<RecordBatch>)>> {
    let mut out = Vec::new();
    for statement in split_statements(sql)? {
        let text = statement.to_string();
        let batches = run_statement(ctx, statement)
            .await
            .map_err(|e| e.context(format!("statement `{text}`")))?;
        out.push((text, batches));
    }
    Ok(out)
}

async fn run_statement(ctx: &SessionContext, statement: Statement) -> Result<Vec<RecordBatch>> {
    let plan = ctx.state().statement_to_plan(statement).await?;
    let df = ctx.execute_logical_plan(plan).await?;
    Ok(df.collect().await?)
}

/// Run all statements but the last, then show the optimized logical plan and
/// the physical plan of the last one; with `analyze`, execute it and show the
/// per-operator metrics (rows, times, memory) instead.
pub async fn explain_sql(ctx: &SessionContext, sql: &str, analyze: bool) -> Result<String> {
    let mut statements = split_statements(sql)?;
    let Some(last) = statements.pop() else {
        return Err(Error::invalid("no SQL statement given"));
    };
    for statement in statements {
        let text = statement.to_string();
        run_statement(ctx, statement)
            .await
            .map_err(|e| e.context(format!("statement `{text}`")))?;
    }
    let state = ctx.state();
    let plan = state.statement_to_plan(last).await?;
    let optimized = state.optimize(&plan)?;
    let physical = state.create_physical_plan(&optimized).await?;
    let mut text = format!(
        "Logical plan:\n{}\n\nPhysical plan:\n",
        optimized.display_indent()
    );
    if analyze {
        let started = std::time::Instant::now();
        let batches = collect(physical.clone(), ctx.task_ctx()).await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        text.push_str(
            &DisplayableExecutionPlan::with_metrics(physical.as_ref())
                .indent(true)
                .to_string(),
        );
        text.push_str(&format!(
            "\n{rows} rows in {:.3} s\n",
            started.elapsed().as_secs_f64()
        ));
    } else {
        text.push_str(&displayable(physical.as_ref()).indent(true).to_string());
    }
    Ok(text)
}

/// How to print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// An ASCII table.
    #[default]
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
}

impl FromStr for OutputFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(Error::invalid(format!(
                "unknown output format `{other}` (expected table, csv or json)"
            ))),
        }
    }
}

/// Render batches in the given format.
pub fn format_batches(batches: &[RecordBatch], format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        OutputFormat::Csv => {
            let mut buf = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in batches {
                    writer.write(b)?;
                }
            }
            String::from_utf8(buf).ctx(ErrorKind::Internal, || "CSV output is not UTF-8".into())
        }
        OutputFormat::Json => {
            let mut buf = Vec::new();
            {
                let mut writer = arrow::json::ArrayWriter::new(&mut buf);
                for b in batches {
                    writer.write(b)?;
                }
                writer.finish()?;
            }
            if buf.is_empty() {
                return Ok("[]".into());
            }
            String::from_utf8(buf).ctx(ErrorKind::Internal, || "JSON output is not UTF-8".into())
        }
    }
}
