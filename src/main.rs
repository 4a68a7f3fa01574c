use clap::Parser;

/// mimalloc instead of the system allocator: query execution allocates and frees many short-lived
/// buffers from several threads, where glibc malloc spent a fifth of `elt`'s CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
