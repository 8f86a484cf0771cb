use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: glibc keeps an arena per thread,
/// and memory allocated on a request thread and freed on the commit
/// thread stayed in them (server RSS at 100,000 users 111 MiB; with
/// mimalloc see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = onramp::cli::Cli::parse();
    match onramp::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
