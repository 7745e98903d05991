use std::io::Write;

// Reads of thousands of devices allocate many small buffers; mimalloc keeps
// that cheap (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use meterlink_agent::cli::LogFormat;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr);
    match LogFormat::of_args(&args) {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meterlink-agent: cannot start the runtime: {e}");
            return ExitCode::from(meterlink_agent::cli::exit::OTHER);
        }
    };
    let (code, out, err) = rt.block_on(meterlink_agent::cli::run(args));
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stderr().write_all(err.as_bytes());
    ExitCode::from(code)
}
