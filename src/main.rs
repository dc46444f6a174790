use clap::Parser;
use intune_mtd_emulator::config::{Cli, Command};

// A request allocates and frees many small objects (JSON maps, headers, rows) across threads;
// glibc's malloc spent a fifth of a Graph GET's CPU on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    intune_mtd_emulator::telemetry::init(&cli.log);
    let result = match cli.command {
        Command::Serve(args) => intune_mtd_emulator::serve(args).await,
        Command::Migrate(args) => intune_mtd_emulator::migrate(args).await,
        Command::Token(args) => intune_mtd_emulator::token(args).await.map(|t| println!("{t}")),
        Command::Seed(args) => intune_mtd_emulator::seed::run(args).await,
        Command::Ca(args) => intune_mtd_emulator::ca(args).await.map(|pem| print!("{pem}")),
        Command::Openapi => {
            use std::io::Write;
            let document = intune_mtd_emulator::http::openapi::document();
            std::io::stdout().write_all(document.as_bytes()).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
