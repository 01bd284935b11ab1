//! The problem collector: reads one variable at a time from the environment, checks it against
//! its kind (a choice, a number, a duration, a size, an https URL, a container name, a file) and
//! notes every problem, each naming its variable and what is allowed, so that all of them are
//! reported together in one [`ConfigError`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::values::{container_name_problem, format_duration, parse_duration, parse_size};
use crate::redact::{shown, shown_url};
use crate::url_util::{is_loopback, plain_host};

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable at fault (or the variables, joined with `/`).
    pub variable: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Every problem found in the environment, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in variable order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} configuration problem(s):", self.problems.len())?;
        for problem in &self.problems {
            write!(f, "\n  {}: {}", problem.variable, problem.message)?;
        }
        Ok(())
    }
}

/// Reads variables and collects their problems. Empty values count as unset.
pub(super) struct Parser<'a> {
    env: &'a BTreeMap<String, String>,
    problems: Vec<Problem>,
}

impl<'a> Parser<'a> {
    /// A collector over these variables, with no problem yet.
    pub(super) fn new(env: &'a BTreeMap<String, String>) -> Parser<'a> {
        Parser {
            env,
            problems: Vec::new(),
        }
    }

    /// The problems found, in the order they were found; `Ok` when there are none.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }

    /// True when a problem about this variable (or these, joined with `/`) was noted already.
    pub(super) fn reported(&self, variable: &str) -> bool {
        self.problems.iter().any(|p| p.variable == variable)
    }

    /// The variable's value, trimmed; `None` when it is unset or empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(|v| v.trim())
    }

    /// Notes a problem with a variable (or with several, joined with `/`).
    pub(super) fn problem(&mut self, variable: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            variable: variable.into(),
            message: message.into(),
        });
    }

    /// One of the `allowed` names (case-insensitive), else `default` and a problem.
    pub(super) fn choice<T: Copy>(&mut self, name: &str, default: T, allowed: &[(&str, T)]) -> T {
        let Some(value) = self.get(name).map(str::to_owned) else {
            return default;
        };
        if let Some((_, t)) = allowed.iter().find(|(n, _)| n.eq_ignore_ascii_case(&value)) {
            return *t;
        }
        let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
        self.problem(
            name,
            format!("{} is not one of: {}", shown(&value), names.join(", ")),
        );
        default
    }

    /// A whole number from `min` to `max`, else `default` and a problem.
    pub(super) fn number(&mut self, name: &str, default: u32, min: u32, max: u32) -> u32 {
        let Some(value) = self.get(name).map(str::to_owned) else {
            return default;
        };
        match value.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(
                    name,
                    format!(
                        "{} must be a whole number from {min} to {max}",
                        shown(&value)
                    ),
                );
                default
            }
        }
    }

    /// `true`, `1`, `yes` or `false`, `0`, `no`, else `default` and a problem.
    pub(super) fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(value) = self.get(name).map(str::to_owned) else {
            return default;
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                self.problem(name, format!("{} must be true or false", shown(&value)));
                default
            }
        }
    }

    /// A size such as `4MiB`, `512KiB`, `8MB` or a number of bytes.
    pub(super) fn size(&mut self, name: &str, default: &str, min: u64, max: u64) -> u64 {
        let fallback = parse_size(default).expect("defaults are valid sizes");
        let Some(value) = self.get(name).map(str::to_owned) else {
            return fallback;
        };
        match parse_size(&value) {
            Some(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(
                    name,
                    format!(
                        "{} must be a size from {} to {} (for example `4MiB`, `512KiB` or a number of bytes)",
                        shown(&value),
                        bytesize::ByteSize::b(min).display().iec_short(),
                        bytesize::ByteSize::b(max).display().iec_short()
                    ),
                );
                fallback
            }
        }
    }

    /// A duration (`90s`, `15m`, `2h`, `7d`) from `min` to `max`, else `default` and a problem.
    pub(super) fn duration(
        &mut self,
        name: &str,
        default: &str,
        min: Duration,
        max: Option<Duration>,
    ) -> Duration {
        let fallback = parse_duration(default).expect("defaults are valid durations");
        let Some(value) = self.get(name).map(str::to_owned) else {
            return fallback;
        };
        let range = match max {
            Some(max) => format!("from {} to {}", format_duration(min), format_duration(max)),
            None => format!("of at least {}", format_duration(min)),
        };
        match parse_duration(&value) {
            Some(d) if d >= min && max.is_none_or(|max| d <= max) => d,
            Some(_) => {
                self.problem(
                    name,
                    format!("{} is out of range: use a duration {range}", shown(&value)),
                );
                fallback
            }
            None => {
                self.problem(
                    name,
                    format!("{} is not a duration: write a whole number and s, m, h or d (90s, 15m, 2h, 7d), {range}", shown(&value)),
                );
                fallback
            }
        }
    }

    /// A root URL: https, or http on a loopback address; a query, fragment, user information or
    /// an odd host is a problem. `default` when unset or not such a URL.
    pub(super) fn endpoint(&mut self, name: &str, default: &str) -> Url {
        let fallback = Url::parse(default).expect("cloud endpoints are valid URLs");
        let Some(value) = self.get(name).map(str::to_owned) else {
            return fallback;
        };
        let shown = shown_url(&value);
        match Url::parse(&value) {
            Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) => {
                if url.query().is_some()
                    || url.fragment().is_some()
                    || !url.username().is_empty()
                    || url.password().is_some()
                    || !plain_host(&url)
                {
                    self.problem(
                        name,
                        format!(
                            "{shown} must be a plain root URL: a host name, without query, fragment, user or password"
                        ),
                    );
                }
                url
            }
            Ok(url) if url.scheme() == "http" => {
                self.problem(
                    name,
                    format!(
                        "{shown} uses plain http, allowed only for loopback addresses: use https"
                    ),
                );
                fallback
            }
            _ => {
                self.problem(name, format!("{shown} is not an https URL"));
                fallback
            }
        }
    }

    /// A container name by Azure's rules, `default` when unset.
    pub(super) fn container(&mut self, name: &str, default: &str) -> String {
        let value = self.get(name).unwrap_or(default).to_owned();
        if let Some(rule) = container_name_problem(&value) {
            self.problem(
                name,
                format!("{} is not a valid container name: it {rule}", shown(&value)),
            );
        }
        value
    }

    /// A path that must name a readable file (a problem otherwise); `None` when unset.
    pub(super) fn existing_file(&mut self, name: &str) -> Option<PathBuf> {
        let path = PathBuf::from(self.get(name)?);
        if !path.is_file() {
            let shown = shown(&path.to_string_lossy());
            self.problem(name, format!("{shown} is not a readable file"));
        }
        Some(path)
    }
}
