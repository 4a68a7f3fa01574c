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
    let code = runtime.block_on(run());
    // Leave without the exit-time teardown: at exit the allocator returns
    // every free page of its arenas to the OS, one `madvise` at a time
    // (about 70 ms after an `elt`, longer after `init`), then the kernel
    // frees the whole address space anyway. Every command has finished its
    // work here (files written and committed, the run lock released, the
    // dashboard's server stopped); only the standard streams need flushing.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process at once; nothing left running needs
    // to be unwound or dropped (see above).
    unsafe { libc::_exit(code) }
}

/// The process exit code of the command.
async fn run() -> i32 {
    lakehouse::telemetry::init();
    let cli = lakehouse::cli::Cli::parse();
    match lakehouse::cli::run(cli).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            1
        }
    }
}
