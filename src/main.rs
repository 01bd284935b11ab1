//! The `entra-export` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use entra_export::cli::{Cli, Command, ConfigCommand};
use entra_export::{commands, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(
        telemetry::format_from_env(),
        matches!(cli.command, Command::Serve),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve => commands::serve().await,
            Command::Run {
                job,
                from,
                to,
                no_progress,
            } => commands::run(job, from.zip(to), no_progress).await,
            Command::Status => commands::status().await,
            Command::Checkpoint { command } => commands::checkpoint(command).await,
            Command::Config {
                command: ConfigCommand::Check,
            } => commands::config_check(),
        }
    })
}
