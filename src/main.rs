use clap::Parser;

/// jemalloc instead of the system allocator: query execution allocates and frees many short-lived
/// buffers from several threads (what glibc malloc cost there: `docs/benchmarks.md`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (read before `main`; `_RJEM_MALLOC_CONF` in the environment overrides
/// them). Every buffer a run frees is reused by the next one whichever thread frees or asks:
/// - `narenas:1`: one arena. With one per thread group (jemalloc's default, like mimalloc's
///   per-thread heaps), a buffer freed on one thread is of no use to the next decode on
///   another, and the heap grows to a multiple of the live data, faulting in fresh pages;
/// - `oversize_threshold:0`: large buffers (whole column chunks) come from that arena too, not
///   from a separate one;
/// - `dirty_decay_ms:1000,muzzy_decay_ms:0`: freed pages stay with the process for a second,
///   for the next buffers to reuse without faulting, then go back to the OS. Keeping them for
///   good (`-1`) holds each size class's peak forever, so a long run's resident memory grows as
///   its builds move from one mix of buffer sizes to another.
///
/// The figures behind each option: `docs/benchmarks.md`, *Figures behind other choices*.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Option<&std::ffi::c_char> = Some(unsafe {
    &*c"narenas:1,oversize_threshold:0,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr()
});

fn main() -> std::process::ExitCode {
    // iceberg builds error values on ordinary paths (scan planning looks up
    // every column that way), and with `RUST_BACKTRACE` set each of them
    // captures a backtrace. Errors skip backtraces
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
    // Leave without the exit-time teardown (destructors, `atexit`
    // handlers): an allocator may return its free pages to the OS there, one
    // `madvise` at a time, and the kernel frees the whole address space
    // anyway.
    // Every command has finished its work here (files written and committed,
    // the run lock released, the dashboard's server stopped); only the
    // standard streams need flushing.
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
            // The error, then each cause once on a line of its own.
            if let Some(d) = lakehouse::error::diagnosis(&e) {
                eprintln!("error: {d}");
            }
            eprintln!("error: {e}");
            for cause in e.causes() {
                eprintln!("  caused by: {cause}");
            }
            1
        }
    }
}
