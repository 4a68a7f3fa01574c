use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lakehouse::telemetry::init();
    let cli = lakehouse::cli::Cli::parse();
    match lakehouse::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}
