//! Reads back what landed in a data container and compares it with the simulator's truth.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use anyhow::{Context, bail};
use entra_export::storage::Storage;

/// The records found in a container's blobs.
#[derive(Debug, Default)]
pub struct Landed {
    /// How many times each id was written.
    pub ids: BTreeMap<String, usize>,
    /// Data blobs read.
    pub blobs: usize,
    /// Records read.
    pub records: usize,
    /// The most records one blob holds.
    pub largest_blob: usize,
    /// The quarantined records (`quarantine/`): reason, job, query and the record.
    pub quarantined: Vec<serde_json::Value>,
}

impl Landed {
    /// Ids written more than once.
    pub fn duplicates(&self) -> Vec<String> {
        self.ids
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Ids of `expected` that are missing.
    pub fn missing<'a>(&self, expected: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        expected
            .into_iter()
            .filter(|id| !self.ids.contains_key(*id))
            .map(str::to_owned)
            .collect()
    }

    /// Ids written that are not in `expected`.
    pub fn unexpected<'a>(&self, expected: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let expected: BTreeSet<&str> = expected.into_iter().collect();
        self.ids
            .keys()
            .filter(|id| !expected.contains(id.as_str()))
            .cloned()
            .collect()
    }
}

/// Reads every data blob of a container (`.json` or `.json.gz`, `graph-page` or `ndjson`).
pub async fn landed(storage: &Storage, container: &str) -> anyhow::Result<Landed> {
    let mut landed = Landed::default();
    for name in storage.list_blobs(container, "").await? {
        let raw = storage.download(container, &name).await?;
        let text = if name.ends_with(".gz") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_string(&mut text)
                .with_context(|| format!("{name}: bad gzip"))?;
            text
        } else {
            String::from_utf8(raw.to_vec()).with_context(|| format!("{name}: not UTF-8"))?
        };
        if name.starts_with(entra_export::storage::naming::QUARANTINE_PREFIX) {
            landed
                .quarantined
                .push(serde_json::from_str(&text).with_context(|| format!("{name}: not JSON"))?);
            continue;
        }
        landed.blobs += 1;
        let ids = record_ids(&text).with_context(|| format!("blob {name}"))?;
        landed.largest_blob = landed.largest_blob.max(ids.len());
        for id in ids {
            landed.records += 1;
            *landed.ids.entry(id).or_default() += 1;
        }
    }
    Ok(landed)
}

/// The `id` of every record of a blob body in either format.
pub fn record_ids(text: &str) -> anyhow::Result<Vec<String>> {
    let trimmed = text.trim_start();
    let records: Vec<serde_json::Value> = if trimmed.starts_with("{\"value\"") {
        let page: serde_json::Value = serde_json::from_str(text)?;
        page["value"]
            .as_array()
            .context("`value` is not an array")?
            .clone()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?
    };
    records
        .iter()
        .map(|record| match record["id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => bail!("a record has no string id"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats() {
        assert_eq!(
            record_ids(r#"{"value":[{"id":"a"},{"id":"b"}]}"#).unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            record_ids("{\"id\":\"a\"}\n{\"id\":\"b\"}\n").unwrap(),
            ["a", "b"]
        );
        assert!(record_ids(r#"{"value":[{"x":1}]}"#).is_err());
    }
}
