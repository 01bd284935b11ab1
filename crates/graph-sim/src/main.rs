//! `graph-sim`: runs the simulator until SIGINT or SIGTERM and prints, as `KEY=value` lines on
//! stdout, the settings a client needs (named like the service's environment variables, so a
//! script can `eval "$(graph-sim ... | head -n 8)"` or parse them).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use graph_sim::{
    Fault, FaultKind, Lateness, Refusal, Resource, RetryAfterStyle, SimConfig, Throttle, start_on,
};

/// A local Microsoft Graph audit/sign-in log API and Entra token endpoint.
#[derive(Debug, Parser)]
#[command(name = "graph-sim", version)]
struct Cli {
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tenant id the token endpoint accepts.
    #[arg(long, default_value = "00000000-0000-0000-0000-0000000000aa")]
    tenant: String,
    /// Client id the token endpoint accepts.
    #[arg(long, default_value = "sim-client")]
    client_id: String,
    /// Client secret the token endpoint accepts.
    #[arg(long, default_value = "sim-secret")]
    client_secret: String,
    /// Access token lifetime (e.g. 3600s, 1h).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    token_lifetime: Duration,
    /// How far back records exist (e.g. 3d).
    #[arg(long, default_value = "3d", value_parser = parse_duration)]
    history: Duration,
    /// How long after start records keep appearing.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    live_for: Duration,
    /// Directory audit records per hour.
    #[arg(long, default_value_t = 60)]
    audit_per_hour: u32,
    /// Interactive user sign-ins per hour (the `signIns` stream).
    #[arg(long, default_value_t = 240)]
    signin_per_hour: u32,
    /// Non-interactive user sign-ins per hour (beta, `nonInteractiveUser` type filter).
    #[arg(long, default_value_t = 0)]
    noninteractive_per_hour: u32,
    /// Service-principal sign-ins per hour (beta, `servicePrincipal` type filter).
    #[arg(long, default_value_t = 0)]
    service_principal_per_hour: u32,
    /// Managed-identity sign-ins per hour (beta, `managedIdentity` type filter).
    #[arg(long, default_value_t = 0)]
    managed_identity_per_hour: u32,
    /// Provisioning events per hour (`auditLogs/provisioning`).
    #[arg(long, default_value_t = 0)]
    provisioning_per_hour: u32,
    /// Risk detections per hour (`identityProtection/riskDetections`).
    #[arg(long, default_value_t = 0)]
    risk_detections_per_hour: u32,
    /// Service-principal risk detections per hour
    /// (`identityProtection/servicePrincipalRiskDetections`).
    #[arg(long, default_value_t = 0)]
    sp_risk_detections_per_hour: u32,
    /// Visibility delay: `none`, `fixed:<dur>` or `uniform:<min>..<max>`.
    #[arg(long, default_value = "none", value_parser = parse_lateness)]
    lateness: Lateness,
    /// One stream's visibility delay, repeatable: `<stream>=<lateness>` (e.g.
    /// `nonInteractiveUser=uniform:15m..30m`). Streams: directoryAudits, signIns,
    /// nonInteractiveUser, servicePrincipal, managedIdentity, provisioning, riskDetections,
    /// servicePrincipalRiskDetections.
    #[arg(long = "stream-lateness", value_parser = parse_stream_lateness)]
    stream_lateness: Vec<(Resource, Lateness)>,
    /// Make a stream answer 403, repeatable: `<stream>[=licence|permission]` (default licence).
    #[arg(long = "forbid", value_parser = parse_forbid)]
    forbid: Vec<(Resource, Refusal)>,
    /// The tenant has no Entra ID P2: both Identity Protection streams answer 403.
    #[arg(long)]
    no_p2: bool,
    /// Fraction of non-interactive, service-principal and managed-identity sign-ins that reuse
    /// an interactive sign-in's id.
    #[arg(long, default_value_t = 0.0)]
    shared_id_fraction: f64,
    /// Fraction of sign-ins re-published later with changed content.
    #[arg(long, default_value_t = 0.0)]
    republish_fraction: f64,
    /// Delay of the re-published version: `none`, `fixed:<dur>` or `uniform:<min>..<max>`.
    #[arg(long, default_value = "uniform:1m..2h", value_parser = parse_lateness)]
    republish_delay: Lateness,
    /// Throttle per client: `<requests>/<duration>` (e.g. 5/10s) or `off`.
    #[arg(long, default_value = "5/10s", value_parser = parse_throttle)]
    throttle: ThrottleArg,
    /// Retry-After style: integer, fractional or http-date.
    #[arg(long, default_value = "fractional", value_parser = parse_style)]
    retry_after_style: RetryAfterStyle,
    /// Latency added to every page.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    page_latency: Duration,
    /// Latency added per record of a page.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    per_record_latency: Duration,
    /// Filters reaching further back answer 400.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    retention: Duration,
    /// Skiptokens older than this answer 400.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    skiptoken_ttl: Duration,
    /// Probability that a page is cut short (still with a next link).
    #[arg(long, default_value_t = 0.0)]
    short_page_probability: f64,
    /// A fault, repeatable: `<kind>[,resource=<stream>][,first=N][,p=0.5][,wider=1h]`
    /// with kind `500`, `502`, `503`, `504`, `truncated`, `drop`, `stall=<dur>`, `expired-token`,
    /// `expired-skiptoken` or `licence`.
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// Write the CA certificate (PEM) here; default: a file in the temporary directory.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Graph server port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    graph_port: u16,
    /// Token server port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    token_port: u16,
    /// Azure Resource Manager: subscriptions and their Activity Log (served on the Graph port).
    #[command(flatten)]
    arm: graph_sim::ArmArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "graph_sim=info".into()),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("graph-sim: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = SimConfig {
        seed: cli.seed,
        tenant: cli.tenant,
        client_id: cli.client_id,
        client_secret: cli.client_secret,
        client_certificates: Vec::new(),
        apps: Vec::new(),
        token_lifetime: cli.token_lifetime,
        history: cli.history,
        live_for: cli.live_for,
        audit_per_hour: cli.audit_per_hour,
        signin_per_hour: cli.signin_per_hour,
        noninteractive_per_hour: cli.noninteractive_per_hour,
        service_principal_per_hour: cli.service_principal_per_hour,
        managed_identity_per_hour: cli.managed_identity_per_hour,
        provisioning_per_hour: cli.provisioning_per_hour,
        risk_detections_per_hour: cli.risk_detections_per_hour,
        sp_risk_detections_per_hour: cli.sp_risk_detections_per_hour,
        lateness: cli.lateness,
        stream_lateness: cli.stream_lateness,
        refusals: cli.forbid,
        p2_licence: !cli.no_p2,
        shared_id_fraction: cli.shared_id_fraction,
        republish_fraction: cli.republish_fraction,
        republish_delay: cli.republish_delay,
        throttle: cli.throttle.0,
        retry_after_style: cli.retry_after_style,
        page_latency: cli.page_latency,
        per_record_latency: cli.per_record_latency,
        retention: cli.retention,
        skiptoken_ttl: cli.skiptoken_ttl,
        short_page_probability: cli.short_page_probability,
        faults: cli.faults,
        arm: cli.arm.into_config(),
    };
    let sim = start_on(config, cli.graph_port, cli.token_port).await?;
    let ca_file = cli.ca_file.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("graph-sim-ca-{}.pem", std::process::id()))
    });
    sim.write_ca_file(&ca_file)?;
    let config = sim.config();
    let lines = [
        ("GRAPH_ENDPOINT", sim.graph_url()),
        ("AZURE_AUTHORITY_HOST", sim.authority_url()),
        ("EXTRA_CA_FILE", ca_file.display().to_string()),
        ("AZURE_TENANT_ID", config.tenant.clone()),
        ("AZURE_CLIENT_ID", config.client_id.clone()),
        ("AZURE_CLIENT_SECRET", config.client_secret.clone()),
        ("AUTH_MODE", "client_secret".to_string()),
        ("ARM_ENDPOINT", sim.arm_url()),
    ];
    for (key, value) in lines {
        println!("{key}={}", shell_quote(&value));
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    wait_for_signal().await?;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Quotes a value for POSIX shells only when it needs it.
fn shell_quote(value: &str) -> String {
    let plain = value
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&byte));
    if plain && !value.is_empty() {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// `500ms`, `30s`, `5m`, `2h`, `3d`, or a plain number of seconds (`2.5`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 30s, 5m, 2h or 3d"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return Err(format!("`{text}` has an unknown unit (ms, s, m, h, d)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

fn parse_lateness(text: &str) -> Result<Lateness, String> {
    if text == "none" {
        return Ok(Lateness::None);
    }
    if let Some(fixed) = text.strip_prefix("fixed:") {
        return Ok(Lateness::Fixed(parse_duration(fixed)?));
    }
    if let Some(range) = text.strip_prefix("uniform:")
        && let Some((min, max)) = range.split_once("..")
    {
        return Ok(Lateness::Uniform {
            min: parse_duration(min)?,
            max: parse_duration(max)?,
        });
    }
    Err(format!(
        "`{text}` is not none, fixed:<duration> or uniform:<min>..<max>"
    ))
}

/// The names `--stream-lateness`, `--forbid` and a fault's `resource=` accept.
fn parse_stream(name: &str) -> Result<Resource, String> {
    Resource::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Resource::ALL.iter().map(|r| r.name()).collect();
        format!("unknown stream `{name}` (one of {})", names.join(", "))
    })
}

fn parse_stream_lateness(text: &str) -> Result<(Resource, Lateness), String> {
    let (stream, lateness) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not <stream>=<lateness>"))?;
    Ok((parse_stream(stream)?, parse_lateness(lateness)?))
}

fn parse_forbid(text: &str) -> Result<(Resource, Refusal), String> {
    let (stream, refusal) = text.split_once('=').unwrap_or((text, "licence"));
    let refusal = Refusal::from_name(refusal)
        .ok_or_else(|| format!("`{refusal}` is not licence or permission"))?;
    Ok((parse_stream(stream)?, refusal))
}

/// `--throttle`: a budget or `off` (a newtype, because clap reads `Option` as "may be absent").
#[derive(Debug, Clone, Copy, PartialEq)]
struct ThrottleArg(Option<Throttle>);

fn parse_throttle(text: &str) -> Result<ThrottleArg, String> {
    if text == "off" {
        return Ok(ThrottleArg(None));
    }
    let (requests, per) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not <requests>/<duration> or off"))?;
    Ok(ThrottleArg(Some(Throttle {
        requests: requests
            .parse()
            .map_err(|_| format!("bad request count in `{text}`"))?,
        per: parse_duration(per)?,
    })))
}

fn parse_style(text: &str) -> Result<RetryAfterStyle, String> {
    match text {
        "integer" => Ok(RetryAfterStyle::Integer),
        "fractional" => Ok(RetryAfterStyle::Fractional),
        "http-date" => Ok(RetryAfterStyle::HttpDate),
        _ => Err(format!("`{text}` is not integer, fractional or http-date")),
    }
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    let mut parts = text.split(',');
    let kind = parts.next().unwrap_or_default();
    let kind = match kind {
        "truncated" => FaultKind::TruncatedBody,
        "drop" => FaultKind::DropConnection,
        "expired-token" => FaultKind::ExpiredToken,
        "expired-skiptoken" => FaultKind::ExpiredSkiptoken,
        "licence" | "license" => FaultKind::LicenceForbidden,
        other => {
            if let Some(delay) = other.strip_prefix("stall=") {
                FaultKind::Stall(parse_duration(delay)?)
            } else if let Ok(status) = other.parse::<u16>() {
                FaultKind::Status(status)
            } else {
                return Err(format!("unknown fault kind `{other}`"));
            }
        }
    };
    let mut fault = Fault::new(kind);
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not key=value"))?;
        match key {
            "resource" => fault.resource = Some(parse_stream(value)?),
            "first" => {
                fault.first_n = Some(value.parse().map_err(|_| format!("bad first `{value}`"))?)
            }
            "p" => fault.probability = value.parse().map_err(|_| format!("bad p `{value}`"))?,
            "wider" => fault.min_window = Some(parse_duration(value)?),
            _ => return Err(format!("unknown fault option `{key}`")),
        }
    }
    Ok(fault)
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
    fn parses_option_values() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert!(parse_duration("3w").is_err());
        assert_eq!(
            parse_lateness("uniform:1s..2m"),
            Ok(Lateness::Uniform {
                min: Duration::from_secs(1),
                max: Duration::from_secs(120)
            })
        );
        assert_eq!(parse_throttle("off"), Ok(ThrottleArg(None)));
        assert_eq!(
            parse_fault("503,resource=signIns,first=2,p=0.5,wider=1h"),
            Ok(Fault::new(FaultKind::Status(503))
                .on(Resource::SignIns)
                .first(2)
                .with_probability(0.5)
                .wider_than(Duration::from_secs(3600)))
        );
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(
            parse_stream_lateness("nonInteractiveUser=fixed:15m"),
            Ok((
                Resource::NonInteractiveSignIns,
                Lateness::Fixed(Duration::from_secs(900))
            ))
        );
        assert_eq!(
            parse_forbid("provisioning=permission"),
            Ok((Resource::Provisioning, Refusal::Permission))
        );
        assert_eq!(
            parse_forbid("riskDetections"),
            Ok((Resource::RiskDetections, Refusal::Licence))
        );
        assert!(parse_forbid("signUps").is_err());
        assert_eq!(
            parse_fault("500,resource=managedIdentity").map(|fault| fault.resource),
            Ok(Some(Resource::ManagedIdentitySignIns))
        );
    }
}
