//! What each subcommand does. `main.rs` only dispatches here.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::cli::JobArg;
use crate::config::Config;
use crate::job::JobKind;
use crate::pipeline::report::Outcome;
use crate::pipeline::{Progress, RunOptions};
use crate::service::{Service, Trigger};

/// The ports the host may give us, newest name first.
const PORT_VARIABLES: [&str; 2] = ["FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"];

/// `serve`: bind first, then everything else. An invalid configuration does not stop the
/// process (the host would restart it in a loop and then give up); every invocation fails
/// with the configuration problems instead, on stderr and in the reply.
pub async fn serve() -> ExitCode {
    let port = PORT_VARIABLES
        .iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (name, value)));
    let Some((name, value)) = port else {
        eprintln!(
            "FUNCTIONS_CUSTOMHANDLER_PORT is not set: `serve` is started by the Azure Functions host, which sets it"
        );
        return ExitCode::from(2);
    };
    let Ok(port) = value.trim().parse::<u16>() else {
        eprintln!("{name}=`{value}` is not a port number");
        return ExitCode::from(2);
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::from_env();
    match &config {
        Ok(_) => tracing::info!(port, "custom handler listening"),
        Err(error) => {
            tracing::error!(port, error = %error, "custom handler listening with an invalid configuration: every run will fail")
        }
    }
    let service = Arc::new(Service::new(config));
    match crate::functions::serve(listener, service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("the custom handler stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `run <job> [--from --to]`.
pub async fn run(
    job: JobArg,
    backfill: Option<(OffsetDateTime, OffsetDateTime)>,
    no_progress: bool,
) -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((from, to)) = backfill
        && from >= to
    {
        eprintln!("--from must be before --to");
        return ExitCode::from(2);
    }
    let service = Service::new(Ok(config));
    let kinds: Vec<JobKind> = match job {
        JobArg::Audit => vec![JobKind::Audit],
        JobArg::Signin => vec![JobKind::SignIn],
        JobArg::All => JobKind::ALL.to_vec(),
    };
    let mut failed = false;
    for kind in kinds {
        let progress = crate::progress::for_terminal(kind, no_progress);
        let options = RunOptions {
            backfill,
            progress: Some(progress as Arc<dyn Progress>),
        };
        let report = service.run_job(kind, Trigger::default(), options).await;
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        failed |= report.outcome == Some(Outcome::Failed);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `status`: checkpoint, lock state and last run of each job.
pub async fn status() -> ExitCode {
    let service = Service::new(Config::from_env());
    let context = match service.context().await {
        Ok(context) => context,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for job in &context.config.jobs {
        let state = tokio::time::timeout(
            Duration::from_secs(30),
            context.storage.read_checkpoint(&job.container),
        )
        .await;
        println!("{} (container {})", job.spec.name, job.container);
        match state {
            Ok(Ok(state)) => {
                let checkpoint = state
                    .checkpoint
                    .map(crate::timestamp::format)
                    .unwrap_or_else(|| "none (the first run starts from INITIAL_LOOKBACK)".into());
                println!("  checkpoint (last_datetime): {checkpoint}");
                println!(
                    "  lock: lease {} / {}",
                    state.lease.state, state.lease.status
                );
                match state.last_run {
                    Some(run) => {
                        println!(
                            "  last run: {} at {}, outcome {}, {} records written",
                            run.run_id,
                            crate::timestamp::format(run.finished_at),
                            run.outcome,
                            run.records_written
                        );
                        println!("  last run report: {}", run.report_json);
                    }
                    None => println!("  last run: none recorded"),
                }
            }
            Ok(Err(crate::storage::Error::ContainerNotFound { .. })) => {
                println!(
                    "  never run: the container does not exist yet (the first run creates it and starts from INITIAL_LOOKBACK)"
                );
            }
            Ok(Err(error)) => {
                failed = true;
                println!("  error: {error}");
            }
            Err(_) => {
                failed = true;
                println!("  error: storage did not answer within 30 s");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `config check`: the effective configuration with secrets redacted; exit 1 on any problem.
pub fn config_check() -> ExitCode {
    match Config::from_env() {
        Ok(config) => {
            for (name, value) in config.describe() {
                println!("{name}={value}");
            }
            println!("# derived: the Graph token scope is {}", config.graph.scope);
            println!("# configuration ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
