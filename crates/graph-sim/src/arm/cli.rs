//! Command-line options of the ARM part, flattened into the `graph-sim` binary's options.

use std::time::Duration;

use super::config::{ArmConfig, ArmThrottle, subscription_id};
use crate::config::Lateness;

/// `--arm-*` options: build an [`ArmConfig`] with [`ArmArgs::into_config`].
#[derive(Debug, Clone, clap::Args)]
pub struct ArmArgs {
    /// Generated subscriptions (ids 5ab5c71d-0000-4000-8000-<n as 12 hex digits>, n = 1..).
    #[arg(long, default_value_t = 3)]
    pub arm_subscriptions: u32,
    /// Activity Log events per hour per subscription.
    #[arg(long, default_value_t = 60)]
    pub arm_events_per_hour: u32,
    /// How far back events exist (e.g. 3d, 90d).
    #[arg(long, default_value = "3d", value_parser = parse_duration)]
    pub arm_history: Duration,
    /// How long after start events keep appearing.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub arm_live_for: Duration,
    /// Delay until an event is published (`submissionTimestamp`): `none`, `fixed:<dur>` or
    /// `uniform:<min>..<max>`.
    #[arg(long, default_value = "uniform:10s..60s", value_parser = parse_lateness)]
    pub arm_publication_delay: Lateness,
    /// Fraction of events published much later (by `--arm-straggler-delay` more).
    #[arg(long, default_value_t = 0.0)]
    pub arm_straggler_fraction: f64,
    /// The extra delay of stragglers.
    #[arg(long, default_value = "uniform:5m..2h", value_parser = parse_lateness)]
    pub arm_straggler_delay: Lateness,
    /// A `$filter` start older than this is refused with 400.
    #[arg(long, default_value = "90d", value_parser = parse_duration)]
    pub arm_retention: Duration,
    /// Events per Activity Log page.
    #[arg(long, default_value_t = 200)]
    pub arm_page_size: usize,
    /// Probability that an Activity Log page is cut short (still with a next link).
    #[arg(long, default_value_t = 0.0)]
    pub arm_short_page_probability: f64,
    /// Subscriptions answered 403 AuthorizationFailed: ids or `#n` (generated subscription n),
    /// comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub arm_forbidden: Vec<String>,
    /// Subscriptions answered 404 SubscriptionNotFound and not listed: ids or `#n`.
    #[arg(long, value_delimiter = ',')]
    pub arm_not_found: Vec<String>,
    /// Read budget per client and subscription: `<capacity>/<refill per second>` (e.g. 250/25)
    /// or `off`.
    #[arg(long, default_value = "250/25", value_parser = parse_throttle)]
    pub arm_throttle: ArmThrottleArg,
    /// Write Microsoft.Insights errors as {"error":{...}} instead of a bare {"code","message"}.
    #[arg(long)]
    pub arm_rp_errors_wrapped: bool,
}

/// `--arm-throttle`: a budget or `off` (a newtype, because clap reads `Option` as "may be absent").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmThrottleArg(pub Option<ArmThrottle>);

impl ArmArgs {
    /// The configuration these options describe (`#n` resolved to generated ids).
    pub fn into_config(self) -> ArmConfig {
        let resolve = |ids: Vec<String>| -> Vec<String> {
            ids.into_iter()
                .map(
                    |id| match id.strip_prefix('#').and_then(|n| n.parse().ok()) {
                        Some(index) => subscription_id(index),
                        None => id,
                    },
                )
                .collect()
        };
        ArmConfig {
            subscriptions: self.arm_subscriptions,
            events_per_hour: self.arm_events_per_hour,
            history: self.arm_history,
            live_for: self.arm_live_for,
            publication_delay: self.arm_publication_delay,
            straggler_fraction: self.arm_straggler_fraction,
            straggler_delay: self.arm_straggler_delay,
            retention: self.arm_retention,
            page_size: self.arm_page_size,
            short_page_probability: self.arm_short_page_probability,
            forbidden: resolve(self.arm_forbidden),
            not_found: resolve(self.arm_not_found),
            throttle: self.arm_throttle.0,
            rp_errors_wrapped: self.arm_rp_errors_wrapped,
            ..ArmConfig::default()
        }
    }
}

/// `500ms`, `30s`, `5m`, `2h`, `3d`, or a plain number of seconds.
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

fn parse_throttle(text: &str) -> Result<ArmThrottleArg, String> {
    if text == "off" {
        return Ok(ArmThrottleArg(None));
    }
    let (capacity, refill) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not <capacity>/<refill per second> or off"))?;
    Ok(ArmThrottleArg(Some(ArmThrottle {
        capacity: capacity
            .parse()
            .map_err(|_| format!("bad capacity in `{text}`"))?,
        refill_per_second: refill
            .trim_end_matches("/s")
            .parse()
            .map_err(|_| format!("bad refill rate in `{text}`"))?,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        arm: ArmArgs,
    }

    #[test]
    fn parses_arm_options() {
        let wrapper = Wrapper::try_parse_from([
            "x",
            "--arm-subscriptions",
            "4",
            "--arm-forbidden",
            "#2,5ab5c71d-0000-4000-8000-00000000000a",
            "--arm-not-found",
            "#3",
            "--arm-throttle",
            "3/0.5",
            "--arm-publication-delay",
            "fixed:2s",
        ])
        .unwrap();
        let config = wrapper.arm.into_config();
        assert_eq!(config.subscriptions, 4);
        assert_eq!(
            config.forbidden,
            vec![subscription_id(2), subscription_id(10)]
        );
        assert_eq!(config.not_found, vec![subscription_id(3)]);
        assert_eq!(
            config.throttle,
            Some(ArmThrottle {
                capacity: 3,
                refill_per_second: 0.5
            })
        );
        assert_eq!(
            config.publication_delay,
            Lateness::Fixed(Duration::from_secs(2))
        );
        let defaults = Wrapper::try_parse_from(["x"]).unwrap().arm.into_config();
        assert_eq!(defaults.throttle, Some(ArmThrottle::default()));
        assert_eq!(defaults.page_size, 200);
    }
}
