//! The `lakehouse` command line: argument parsing and dispatch, nothing else.
//!
//! Each verb parses its arguments here and calls one function of the library;
//! output formatting for the terminal lives here too.

use clap::{Parser, Subcommand};

use crate::error::Result;

/// A pure-Rust lakehouse: OData -> Iceberg -> HOOK -> Unified Star Schema.
#[derive(Debug, Parser)]
#[command(name = "lakehouse", version, about, long_about = None)]
pub struct Cli {
    /// Where the warehouse lives: a local path, file://..., or s3://bucket/prefix.
    #[arg(
        long,
        global = true,
        env = "LAKEHOUSE_WAREHOUSE",
        default_value = "./lakehouse"
    )]
    pub warehouse: String,

    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {}
}
