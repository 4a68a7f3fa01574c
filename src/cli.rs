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
pub enum Command {
    /// Serve the embedded Adventure Works source over HTTP (OData v4) until Ctrl-C.
    DemoSource(DemoSourceArgs),
}

/// Arguments of `demo-source`.
#[derive(Debug, clap::Args)]
pub struct DemoSourceArgs {
    /// TCP port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Data size: 1.0 is about the real data set.
    #[arg(long, default_value_t = 0.01)]
    pub scale: f64,
    /// Simulated day to serve (0 = initial history).
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rows per page (default: the source config's page size).
    #[arg(long)]
    pub page_size: Option<usize>,
    /// Source config file (default: the built-in Adventure Works config).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::DemoSource(args) => demo_source(args).await,
    }
}

async fn demo_source(args: DemoSourceArgs) -> Result<()> {
    use crate::config::SourceConfig;
    use crate::error::{ErrorKind, ResultExt};
    use crate::source::{GeneratorOptions, ServerOptions, serve};

    let config = match &args.config {
        Some(path) => SourceConfig::from_path(path)?,
        None => SourceConfig::adventure_works()?,
    };
    let options = ServerOptions {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
        page_size: args.page_size.unwrap_or(config.page_size),
        generator: GeneratorOptions {
            seed: args.seed,
            scale: args.scale,
        },
        day: args.day,
    };
    let server = serve(&config, options).await?;
    let counts = server.with_generator(|g| g.row_counts());
    let rows: usize = counts.values().sum();
    println!(
        "Serving {} ({} resources, {rows} rows, scale {}, day {}, seed {}) at {}/",
        config.name,
        config.resources.len(),
        args.scale,
        args.day,
        args.seed,
        server.base_url()
    );
    println!("Try: {}/SalesOrderHeaders?$top=2", server.base_url());
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .ctx(ErrorKind::Internal, || "cannot wait for Ctrl-C".to_string())?;
    server.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_source_arguments() {
        let cli = Cli::try_parse_from([
            "lakehouse",
            "demo-source",
            "--port",
            "0",
            "--scale",
            "0.5",
            "--day",
            "3",
            "--seed",
            "9",
            "--page-size",
            "250",
        ])
        .expect("parses");
        let Command::DemoSource(args) = cli.command;
        assert_eq!(args.port, 0);
        assert_eq!(args.scale, 0.5);
        assert_eq!(args.day, 3);
        assert_eq!(args.seed, 9);
        assert_eq!(args.page_size, Some(250));
        assert!(args.config.is_none());
    }
}
