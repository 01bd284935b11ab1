//! Shared helpers of the configuration tests: a minimal valid environment and ways to change
//! it and look at the result.

use super::{Config, ConfigError};

/// The client secret of [`minimal`], which no rendering may show.
pub(super) const SECRET: &str = "s3cr3t-value-that-must-not-leak";

/// The fewest variables that make a valid configuration: client secret auth, a storage URL.
pub(super) fn minimal() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
        ("AZURE_CLIENT_SECRET", SECRET),
        (
            "STORAGE_ACCOUNT_URL",
            "https://logs.blob.core.usgovcloudapi.net",
        ),
    ]
}

/// [`minimal`] with these variables set (or replaced; an empty value unsets one).
pub(super) fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
    let mut vars = minimal();
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push((name, value));
    }
    Config::from_vars(vars)
}

/// [`minimal`] with these variables set (or replaced; an empty value unsets one), values owned.
pub(super) fn with_owned(extra: &[(&str, String)]) -> Result<Config, ConfigError> {
    let mut vars: Vec<(String, String)> = minimal()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push(((*name).to_owned(), value.clone()));
    }
    Config::from_vars(vars)
}

/// The problems (variable, message) of a result that must be an error.
pub(super) fn problems(result: Result<Config, ConfigError>) -> Vec<(String, String)> {
    match result {
        Ok(config) => panic!("expected problems, got {config:?}"),
        Err(error) => error
            .problems
            .into_iter()
            .map(|p| (p.variable, p.message))
            .collect(),
    }
}

/// The variables of the problems of a result that must be an error.
pub(super) fn problem_variables(result: Result<Config, ConfigError>) -> Vec<String> {
    result
        .unwrap_err()
        .problems
        .into_iter()
        .map(|p| p.variable)
        .collect()
}

/// Everything a configuration error or a configuration can be shown as.
pub(super) fn every_rendering(result: &Result<Config, ConfigError>) -> String {
    match result {
        Ok(config) => format!("{config:?}\n{:?}", config.describe()),
        Err(error) => format!("{error}\n{error:?}"),
    }
}

/// Each `(variable, bad value)` alone on top of [`minimal`] gives a problem naming the variable.
pub(super) fn assert_each_names_its_variable(cases: &[(&'static str, &'static str)]) {
    for (name, value) in cases {
        let variables = problem_variables(with(&[(name, value)]));
        assert!(
            variables.iter().any(|v| v.contains(name)),
            "{name}={value} gave problems for {variables:?}"
        );
    }
}
