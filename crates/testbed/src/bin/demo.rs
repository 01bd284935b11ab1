//! The quick-start demo: the Graph simulator with a few days of audit and sign-in history and
//! live late arrivals, Azurite, and the real `entra-export serve` invoked through the
//! custom-handler protocol as the Functions host does, several times. It prints what landed and
//! checks it against the simulator's truth. Run it with `scripts/demo.sh` (`--help` for the
//! options).
//!
//! Scales are compressed so that it finishes in about a minute: the throttle budget is 50
//! requests per 10 s on both sides (the real one is 5), late arrivals come within 20 s and the
//! replay window is 2 minutes.
//!
//! With `--keep` it then leaves the simulator and `serve` running and prints the `export` lines
//! that point `entra-export status`, `run` and `config check` at them; `--list` lists what
//! landed, using those variables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use entra_export::job::JobKind;
use entra_export::storage::Storage;
use graph_sim::{Lateness, SimConfig, Throttle};
use testbed::{Serve, Stack, StackOptions, timer_payload};
use time::OffsetDateTime;

/// The entra-export demo: the Graph simulator, Azurite and the real `entra-export serve`,
/// invoked as the Functions host does; prints what landed and checks it against the simulator.
///
/// Run it through `scripts/demo.sh`, which builds it, starts Azurite (and stops it afterwards)
/// and passes these options on.
#[derive(Debug, Parser)]
#[command(
    name = "demo",
    after_help = "Examples:\n  scripts/demo.sh --short                    a quick run (about 30 s after the build)\n  scripts/demo.sh --short --keep             keep the stand-ins running, print the variables to use them\n  target/debug/demo --list                   with those variables set: the blobs that landed\n  scripts/demo.sh --stop                     stop what --keep left running (and Azurite)"
)]
struct Args {
    /// A quicker run: one day of history and two timer ticks (instead of three days and four).
    #[arg(long)]
    short: bool,
    /// Also download every blob that landed into DIR/<default container>/ (logs-audit/, logs-signin/, …).
    #[arg(long, value_name = "DIR")]
    save_blobs: Option<PathBuf>,
    /// After the checks pass, keep the Graph simulator and `entra-export serve` running, print
    /// the `export` lines that point `entra-export` at them, and wait for Ctrl-C or SIGTERM.
    /// Azurite is left running too (`scripts/demo.sh --stop` or `scripts/azurite.sh stop`).
    #[arg(long)]
    keep: bool,
    /// With --keep: also write the `export` lines to FILE, once everything is ready (source it
    /// with `. FILE`).
    #[arg(long, value_name = "FILE", requires = "keep")]
    env_file: Option<PathBuf>,
    /// Run no demo: list the blobs and records in the containers of every enabled stream of the
    /// storage the environment names (the variables `--keep` prints); with --save-blobs, download
    /// them too.
    #[arg(long, conflicts_with_all = ["short", "keep"])]
    list: bool,
}

/// The streams the demo enables (the defaults of `SIGNIN_EVENT_TYPES` and `AUDIT_STREAMS`).
const DEMO_STREAMS: [JobKind; 6] = [
    JobKind::Audit,
    JobKind::SignIn,
    JobKind::NonInteractiveSignIn,
    JobKind::ServicePrincipalSignIn,
    JobKind::ManagedIdentitySignIn,
    JobKind::Provisioning,
];

/// Variables of the stack that are not needed to point the CLI at it.
const NOT_EXPORTED: &[&str] = &["RUST_LOG"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.list {
        return list(args.save_blobs.as_deref()).await;
    }
    let save_blobs = args.save_blobs;
    let (days, ticks) = if args.short { (1, 2) } else { (3, 4) };
    let sim = SimConfig {
        seed: 2026,
        history: Duration::from_secs(days * 86_400),
        live_for: Duration::from_secs(3600),
        audit_per_hour: 120,
        signin_per_hour: 600,
        noninteractive_per_hour: 1_800,
        service_principal_per_hour: 300,
        managed_identity_per_hour: 300,
        provisioning_per_hour: 30,
        lateness: Lateness::Uniform {
            min: Duration::from_secs(1),
            max: Duration::from_secs(20),
        },
        republish_fraction: 0.02,
        throttle: Some(Throttle {
            requests: 50,
            per: Duration::from_secs(10),
        }),
        ..SimConfig::default()
    };
    let env: Vec<(String, String)> = [
        ("INITIAL_LOOKBACK", format!("{days}d")),
        ("QUERY_LAG", "0s".to_owned()),
        ("REPLAY_WINDOW", "2m".to_owned()),
        ("GRAPH_MAX_REQUESTS_PER_10S", "50".to_owned()),
        // The default streams: every sign-in type, directory audits and provisioning.
        (
            "SIGNIN_EVENT_TYPES",
            "interactiveUser,nonInteractiveUser,servicePrincipal,managedIdentity".to_owned(),
        ),
        ("AUDIT_STREAMS", "directoryAudits,provisioning".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    println!(
        "== starting the Graph simulator ({days} day(s) of history, live records, late arrivals up to 20 s)"
    );
    let stack = Stack::start(StackOptions { sim, env })
        .await?
        .context("Azurite is not running: use scripts/demo.sh")?;
    println!("   Graph     {}", stack.sim.graph_url());
    println!("   authority {}", stack.sim.authority_url());
    println!("== starting entra-export serve as the Functions host would");
    let serve = Serve::spawn(&stack.env()).await?;
    println!(
        "   listening on 127.0.0.1:{}, answered GET / after {:?}",
        serve.port, serve.startup
    );

    let mut last_started = OffsetDateTime::now_utc();
    let mut late_caught = 0u64;
    // Where each job's first run started (INITIAL_LOOKBACK before it): older records were
    // never asked for.
    let mut first_start: std::collections::HashMap<String, OffsetDateTime> = Default::default();
    for tick in 1..=ticks {
        if tick > 1 {
            println!(
                "   (waiting 15 s for the next timer tick; new records keep arriving, some late)"
            );
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
        println!("== timer tick {tick}: POST /AuditTimer and POST /SignInTimer");
        last_started = OffsetDateTime::now_utc();
        let audit = timer_payload("AuditTimer", true, false);
        let signin = timer_payload("SignInTimer", true, false);
        let (a, s) = tokio::join!(
            serve.invoke("AuditTimer", &audit),
            serve.invoke("SignInTimer", &signin)
        );
        for reply in [a?, s?] {
            let body = reply.json()?;
            for (report, line) in reply.reports()?.iter().zip(
                body["Logs"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            ) {
                println!(
                    "   {} -> HTTP {}: {}",
                    report["job"],
                    reply.status,
                    line.as_str().unwrap_or("")
                );
                late_caught += report["late_records"].as_u64().unwrap_or(0);
                if let (Some(job), Some(start)) =
                    (report["job"].as_str(), report["range_start"].as_str())
                    && let Ok(start) = entra_export::timestamp::parse(start)
                {
                    first_start.entry(job.to_owned()).or_insert(start);
                }
            }
            if reply.status != 200 {
                bail!("a run failed: {}", serve.logs());
            }
        }
    }

    println!("== what landed");
    let storage = stack.storage().await?;
    let mut all_good = true;
    for kind in DEMO_STREAMS {
        let resource = testbed::e2e::resource(kind);
        let container = stack.container(kind);
        let state = storage.read_checkpoint(&container).await?;
        let checkpoint = state.checkpoint.context("no checkpoint was written")?;
        let landed = testbed::verify::landed(&storage, &container).await?;
        let range_start = checkpoint - time::Duration::days(days as i64) - time::Duration::hours(1);
        let expected: Vec<_> = stack
            .sim
            .truth(resource, range_start, checkpoint)
            .into_iter()
            .filter(|r| {
                r.visible_at <= last_started
                    && first_start
                        .get(kind.name())
                        .is_some_and(|start| r.time >= *start)
            })
            .collect();
        let possible: Vec<_> =
            stack
                .sim
                .all_records(resource, range_start, OffsetDateTime::now_utc());
        let missing = landed.missing(expected.iter().map(|r| r.id.as_str()));
        let unexpected = landed.unexpected(possible.iter().map(|r| r.id.as_str()));
        let duplicates = landed.duplicates();
        println!(
            "   {kind}: {} blobs, {} records in container {container}; checkpoint last_datetime={}",
            landed.blobs,
            landed.records,
            entra_export::timestamp::format(checkpoint)
        );
        println!(
            "      simulator truth: {} records visible before the last tick -> missing {}, duplicated {}, unknown {}",
            expected.len(),
            missing.len(),
            duplicates.len(),
            unexpected.len()
        );
        for record in expected
            .iter()
            .filter(|r| missing.iter().take(3).any(|m| *m == r.id))
        {
            println!(
                "      missing {} (time {}, visible at {})",
                record.id,
                entra_export::timestamp::format(record.time),
                entra_export::timestamp::format(record.visible_at)
            );
        }
        all_good &= missing.is_empty() && duplicates.is_empty() && unexpected.is_empty();
        let names = storage.list_blobs(&container, "").await?;
        for name in names.iter().take(2).chain(names.last()) {
            println!("      blob {name}");
        }
        if let Some(dir) = &save_blobs {
            save(&storage, kind, &container, &names, dir).await?;
        }
    }
    println!("   late records caught by the replay window: {late_caught}");
    let counters = stack.sim.counters();
    println!(
        "   Graph requests {}, 429s {}, Retry-After ignored {}",
        counters.requests, counters.throttled, counters.retry_after_ignored
    );
    if !all_good {
        bail!("what landed does not match the simulator's truth");
    }
    println!("== demo passed: every record landed exactly once");
    if args.keep {
        keep(&stack, &serve, args.env_file.as_deref()).await?;
    }
    Ok(())
}

/// Downloads `names` from `container` into `dir/<default container name>/`.
async fn save(
    storage: &Storage,
    kind: JobKind,
    container: &str,
    names: &[String],
    dir: &Path,
) -> anyhow::Result<()> {
    let folder = dir.join(kind.spec_template().default_container);
    for name in names {
        let path = folder.join(name);
        std::fs::create_dir_all(path.parent().context("blob path has a parent")?)?;
        std::fs::write(&path, storage.download(container, name).await?)?;
    }
    println!(
        "      saved {} blobs under {}",
        names.len(),
        folder.display()
    );
    Ok(())
}

/// `--keep`: prints how to use what runs, then waits for Ctrl-C, SIGTERM or SIGHUP.
async fn keep(stack: &Stack, serve: &Serve, env_file: Option<&Path>) -> anyhow::Result<()> {
    let exports: Vec<String> = stack
        .env()
        .iter()
        .filter(|(k, _)| !NOT_EXPORTED.contains(&k.as_str()))
        .map(|(k, v)| format!("export {k}={}", shell_quote(v)))
        .collect();
    let demo_pid = std::process::id();
    let serve_pid = serve
        .pid()
        .map_or_else(|| "?".to_owned(), |p| p.to_string());
    let cwd = std::env::current_dir()?;
    let bin = testbed::host::binary()?;
    let bin = bin.strip_prefix(&cwd).unwrap_or(&bin).display();
    let demo = std::env::current_exe()?;
    let demo = demo.strip_prefix(&cwd).unwrap_or(&demo).display();
    let payload = String::from_utf8(timer_payload("AuditTimer", true, false))?;
    println!(
        "== kept running: Azurite, the Graph simulator (in this demo process, pid {demo_pid}) and entra-export serve (pid {serve_pid}, 127.0.0.1:{port})",
        port = serve.port
    );
    println!("   Point entra-export at them: run these lines in your shell");
    if let Some(file) = env_file {
        println!("   (or source them: . {})", file.display());
    }
    println!();
    for line in &exports {
        println!("{line}");
    }
    println!();
    println!("   then, all local:");
    let commands = [
        (format!("{bin} config check"), "the effective configuration"),
        (format!("{bin} status"), "checkpoints, locks, last runs"),
        (format!("{bin} run audit"), "one more run now, from the CLI"),
        (
            format!("{demo} --list"),
            "the blobs and records that landed",
        ),
        (
            format!("{demo} --list --save-blobs DIR"),
            "... and download them",
        ),
    ];
    let width = commands.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (command, what) in &commands {
        println!("     {command:width$}  # {what}");
    }
    println!("   and a timer tick through the running serve, as the Functions host sends it:");
    println!(
        "     curl -s -X POST http://127.0.0.1:{}/AuditTimer -H 'Content-Type: application/json' -d {}",
        serve.port,
        shell_quote(&payload)
    );
    println!(
        "   Stop: kill {demo_pid} (or Ctrl-C in its terminal) ends the simulator and serve; scripts/azurite.sh stop ends Azurite"
    );
    if let Some(file) = env_file {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, exports.join("\n") + "\n")?;
        std::fs::rename(&tmp, file)?;
    }
    wait_for_stop().await?;
    if let Some(file) = env_file {
        let _ = std::fs::remove_file(file);
    }
    eprintln!("demo: stopping the Graph simulator and entra-export serve (pid {serve_pid})");
    Ok(())
}

async fn wait_for_stop() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
        _ = hangup.recv() => {}
    }
    Ok(())
}

/// `--list`: the blobs of every enabled stream's container on the storage the environment names.
async fn list(save_blobs: Option<&Path>) -> anyhow::Result<()> {
    let config = entra_export::config::Config::from_env().map_err(|e| {
        anyhow::anyhow!(
            "{e}\n--list reads the same variables as entra-export: set those `scripts/demo.sh --keep` printed"
        )
    })?;
    let http = entra_export::http::build_client(config.extra_ca_file.as_deref())?;
    let storage = Storage::new(&config.storage, None, http)?;
    for kind in config.streams.clone() {
        let container = &config.job(kind).container;
        let names = storage.list_blobs(container, "").await?;
        let landed = testbed::verify::landed(&storage, container).await?;
        println!(
            "{kind}: container {container}: {} blobs, {} records",
            landed.blobs, landed.records
        );
        for name in &names {
            println!("   {name}");
        }
        if let Some(dir) = save_blobs {
            save(&storage, kind, container, &names, dir).await?;
        }
    }
    Ok(())
}

/// `value` as one shell word: as is when it is plain, else in single quotes.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}
