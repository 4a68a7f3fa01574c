use clap::Parser;

/// mimalloc instead of the system allocator: query execution allocates and frees many short-lived
/// buffers from several threads, where glibc malloc spent a fifth of `elt`'s CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // iceberg builds error values on ordinary paths (scan planning looks up
    // every column that way), and with `RUST_BACKTRACE` set each of them
    // captured a backtrace: a few percent of a run. Errors skip backtraces
    // unless `RUST_LIB_BACKTRACE` asks for them; panics still follow
    // `RUST_BACKTRACE`.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet (the runtime starts below).
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

async fn run() -> std::process::ExitCode {
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
