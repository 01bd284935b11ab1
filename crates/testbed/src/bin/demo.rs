//! The quick-start demo: the Graph simulator with a few days of audit and sign-in history and
//! live late arrivals, Azurite, and the real `entra-export serve` invoked through the
//! custom-handler protocol as the Functions host does, several times. It prints what landed and
//! checks it against the simulator's truth. Run it with `scripts/demo.sh`.
//!
//! Scales are compressed so that it finishes in about a minute: the throttle budget is 50
//! requests per 10 s on both sides (the real one is 5), late arrivals come within 20 s and the
//! replay window is 2 minutes.

use std::time::Duration;

use anyhow::{Context, bail};
use entra_export::job::JobKind;
use graph_sim::{Lateness, Resource, SimConfig, Throttle};
use testbed::{Serve, Stack, StackOptions, timer_payload};
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let short = args.iter().any(|a| a == "--short");
    let save_blobs = args
        .iter()
        .position(|a| a == "--save-blobs")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let (days, ticks) = if short { (1, 2) } else { (3, 4) };
    let sim = SimConfig {
        seed: 2026,
        history: Duration::from_secs(days * 86_400),
        live_for: Duration::from_secs(3600),
        audit_per_hour: 120,
        signin_per_hour: 600,
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
            println!(
                "   {} -> HTTP {}: {}",
                body["ReturnValue"]["job"],
                reply.status,
                body["Logs"][0].as_str().unwrap_or("")
            );
            late_caught += body["ReturnValue"]["late_records"].as_u64().unwrap_or(0);
            if reply.status != 200 {
                bail!("a run failed: {}", serve.logs());
            }
        }
    }

    println!("== what landed");
    let storage = stack.storage().await?;
    let mut all_good = true;
    for (kind, resource) in [
        (JobKind::Audit, Resource::DirectoryAudits),
        (JobKind::SignIn, Resource::SignIns),
    ] {
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
                    && r.time
                        >= OffsetDateTime::now_utc()
                            - time::Duration::days(days as i64)
                            - time::Duration::minutes(2)
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
        all_good &= missing.is_empty() && duplicates.is_empty() && unexpected.is_empty();
        let names = storage.list_blobs(&container, "").await?;
        for name in names.iter().take(2).chain(names.last()) {
            println!("      blob {name}");
        }
        if let Some(dir) = &save_blobs {
            let folder = dir.join(kind.spec_template().default_container);
            for name in &names {
                let path = folder.join(name);
                std::fs::create_dir_all(path.parent().context("blob path has a parent")?)?;
                std::fs::write(&path, storage.download(&container, name).await?)?;
            }
            println!(
                "      saved {} blobs under {}",
                names.len(),
                folder.display()
            );
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
    Ok(())
}
