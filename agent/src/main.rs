use clap::Parser;
use meterlink_agent::cli::{self, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meterlink-agent: cannot start the runtime: {e}");
            return ExitCode::from(cli::exit::OTHER);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Probe(a) => cli::probe(a).await,
            Command::Discover(a) => meterlink_agent::discovery::run(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("meterlink-agent: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
