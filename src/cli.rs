//! The command line: `serve` for the Functions host, `run`, `status` and `config check` for
//! operators.

use clap::{Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

/// Shown after the top-level help, `-h` and `--help` alike (`long_about = None` drops a doc
/// comment's second paragraph, so it cannot live there).
const CONFIGURATION_HELP: &str = "\
Configuration comes from environment variables (the Function App's app settings), not options.
`entra-export config check` prints the effective configuration and names every problem;
the README's Configuration section lists every variable.";

/// Copies Microsoft Entra ID audit and sign-in logs from Microsoft Graph into Azure Blob Storage.
#[derive(Debug, Parser)]
#[command(
    name = "entra-export",
    version,
    about,
    long_about = None,
    after_help = CONFIGURATION_HELP
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as an Azure Functions custom handler on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT
    /// (started by the Functions host through host.json).
    Serve,
    /// Run a job once now, as a timer would; or backfill an explicit range with --from/--to
    /// (a backfill never moves the checkpoint).
    Run {
        /// Which job.
        job: JobArg,
        /// Backfill start (inclusive), RFC 3339, for example 2026-11-01T00:00:00Z.
        #[arg(long, value_parser = parse_time, requires = "to")]
        from: Option<OffsetDateTime>,
        /// Backfill end (exclusive), RFC 3339.
        #[arg(long, value_parser = parse_time, requires = "from")]
        to: Option<OffsetDateTime>,
        /// Never show a progress bar, print plain progress lines.
        #[arg(long)]
        no_progress: bool,
    },
    /// Show each job's checkpoint, lock state and last run.
    Status,
    /// Configuration commands.
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted); exit 1 on any problem.
    Check,
}

/// A job named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobArg {
    /// Directory audit logs.
    Audit,
    /// Sign-in logs.
    Signin,
    /// Both, one after the other.
    All,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    crate::timestamp::parse(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_says_configuration_comes_from_environment_variables() {
        for flag in ["-h", "--help"] {
            let help = Cli::command()
                .try_get_matches_from(["entra-export", flag])
                .unwrap_err()
                .to_string();
            assert!(help.contains("environment variables"), "{flag}: {help}");
            assert!(help.contains("config check"), "{flag}: {help}");
            assert!(help.contains("README"), "{flag}: {help}");
        }
    }

    #[test]
    fn backfill_needs_both_bounds() {
        assert!(
            Cli::try_parse_from([
                "entra-export",
                "run",
                "audit",
                "--from",
                "2026-11-01T00:00:00Z"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from([
            "entra-export",
            "run",
            "signin",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-02T00:00:00Z",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Run {
                job: JobArg::Signin,
                from: Some(_),
                to: Some(_),
                ..
            }
        ));
        assert!(
            Cli::try_parse_from([
                "entra-export",
                "run",
                "audit",
                "--from",
                "yesterday",
                "--to",
                "today"
            ])
            .is_err()
        );
    }
}
