//! The command line: `serve` for the Functions host, `run`, `status`, `checkpoint` and
//! `config check` for operators.

use crate::job::{JobKind, Timer};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
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
        /// Which stream: one by name, a timer's enabled streams (`AuditTimer`, `SignInTimer`)
        /// or `all` enabled streams.
        #[arg(value_parser = any_job())]
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
    /// Show or move a job's checkpoint (`last_datetime` in its container's metadata).
    Checkpoint {
        /// What to do with the checkpoint.
        #[command(subcommand)]
        command: CheckpointCommand,
    },
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

/// `checkpoint` subcommands.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Show a job's checkpoint, lock, last run and the windows a run left open.
    ///
    /// Also `checkpoint_version` and the written-ids state. A job that never ran is "never
    /// run" (exit 0); exit 1 when something cannot be read.
    Show {
        /// Which stream, a timer's streams, or `all`.
        #[arg(value_parser = any_job())]
        job: JobArg,
        /// Print JSON (one object per job) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a job's checkpoint by hand, under the run lock.
    ///
    /// Every record before TIME then counts as stored. Refused (exit 1) while a run holds the
    /// lock. Only `last_datetime` and `checkpoint_version` change, the other metadata keys are
    /// kept; the windows a run left open are cleared, so the next run plans its range afresh.
    Set {
        /// Which job (one job, not `all`).
        #[arg(value_parser = one_job())]
        job: JobArg,
        /// The new checkpoint, RFC 3339 with 0 to 7 fractional digits, for example
        /// 2026-11-01T00:00:00Z; not in the future.
        #[arg(value_parser = parse_time)]
        time: OffsetDateTime,
        /// Check and print what would change; take no lock, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Accept a time older than Entra's 30-day retention.
        #[arg(long)]
        force: bool,
    },
}

/// What a command line names: one stream, the streams of a timer, or every enabled stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobArg {
    /// One stream by name (`audit`, `signin`, `signin-noninteractive`, …).
    Stream(JobKind),
    /// The enabled streams of a timer (`AuditTimer`, `SignInTimer`).
    Timer(Timer),
    /// Every enabled stream.
    All,
}

impl JobArg {
    /// Every name the command line accepts.
    pub fn names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = JobKind::ALL.iter().map(|k| k.name()).collect();
        names.extend(Timer::ALL.iter().map(|t| t.function_name()));
        names.push("all");
        names
    }

    fn parse(text: &str) -> Option<JobArg> {
        if text == "all" {
            return Some(JobArg::All);
        }
        JobKind::from_name(text)
            .map(JobArg::Stream)
            .or_else(|| Timer::from_function_name(text).map(JobArg::Timer))
    }
}

/// A stream, a timer's set or `all`.
fn any_job() -> impl TypedValueParser<Value = JobArg> {
    PossibleValuesParser::new(JobArg::names())
        .map(|name| JobArg::parse(&name).expect("a possible value names streams"))
}

/// One stream: the names of [`JobKind`].
fn one_job() -> impl TypedValueParser<Value = JobArg> {
    let names: Vec<&'static str> = JobKind::ALL.iter().map(|k| k.name()).collect();
    PossibleValuesParser::new(names)
        .map(|name| JobArg::parse(&name).expect("a possible value names a stream"))
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
    fn checkpoint_set_takes_one_job_and_a_valid_time() {
        let cli = Cli::try_parse_from([
            "entra-export",
            "checkpoint",
            "set",
            "signin",
            "2026-11-01T00:00:00.1234567Z",
            "--dry-run",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Checkpoint {
                command: CheckpointCommand::Set {
                    job: JobArg::Stream(JobKind::SignIn),
                    dry_run: true,
                    force: false,
                    ..
                }
            }
        ));
        let error = Cli::try_parse_from([
            "entra-export",
            "checkpoint",
            "set",
            "all",
            "2026-11-01T00:00:00Z",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("audit, signin, signin-noninteractive"),
            "{error}"
        );
        let error =
            Cli::try_parse_from(["entra-export", "checkpoint", "set", "audit", "yesterday"])
                .unwrap_err()
                .to_string();
        assert!(error.contains("`yesterday` is not an RFC 3339"), "{error}");
        let cli =
            Cli::try_parse_from(["entra-export", "checkpoint", "show", "all", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Checkpoint {
                command: CheckpointCommand::Show {
                    job: JobArg::All,
                    json: true
                }
            }
        ));
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
                job: JobArg::Stream(JobKind::SignIn),
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
