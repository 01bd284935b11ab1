//! The storage layer against Azurite 3.35.0 through the real SDK.
//!
//! Lock and checkpoint safety rest on the lease id, which Azurite enforces like the service;
//! nothing here depends on container `If-Match`, which Azurite silently ignores.

use std::collections::HashMap;
use std::io::Read as _;
use std::time::{Duration, Instant};

use azure_storage_blob::models::BlobClientGetPropertiesResultHeaders as _;
use entra_export::config::{Compression, OutputFormat};
use entra_export::storage::blobs::encode_plain;
use entra_export::storage::{BlobName, Error, LastRun, Storage, Timeouts};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::helpers;

fn last_run(id: &str, records: u64) -> LastRun {
    LastRun {
        run_id: id.to_owned(),
        finished_at: datetime!(2024-01-13 14:15:00.5 UTC),
        outcome: "succeeded".to_owned(),
        records_written: records,
        report_json: format!(r#"{{"run_id":"{id}","pages":2}}"#),
    }
}

async fn set_raw_metadata(container: &str, pairs: &[(&str, &str)]) {
    let metadata: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    helpers::raw_container_client(container)
        .set_metadata(&metadata, None)
        .await
        .expect("raw metadata write");
}

async fn new_container(storage: &Storage, tag: &str) -> String {
    let container = helpers::unique_container(tag);
    storage.ensure_container(&container).await.unwrap();
    container
}

#[tokio::test]
async fn containers_are_created_when_missing() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = helpers::unique_container("create");

    assert!(matches!(
        storage.read_checkpoint(&container).await,
        Err(Error::ContainerNotFound { .. })
    ));
    storage.ensure_container(&container).await.unwrap();
    storage.ensure_container(&container).await.unwrap();

    let state = storage.read_checkpoint(&container).await.unwrap();
    assert_eq!(state.checkpoint, None);
    assert_eq!(state.last_run, None);
    assert_eq!(state.lease.state, "available");
    assert_eq!(state.lease.status, "unlocked");
}

#[tokio::test]
async fn checkpoint_round_trips_and_keeps_foreign_metadata() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "roundtrip").await;
    // What the Python sample leaves behind.
    set_raw_metadata(
        &container,
        &[
            ("last_datetime", "2019-05-21T19:15:41.6195833Z"),
            ("last_execution", "2019-05-21 12:15:41.123456"),
        ],
    )
    .await;
    let state = storage.read_checkpoint(&container).await.unwrap();
    assert_eq!(
        state.checkpoint,
        Some(datetime!(2019-05-21 19:15:41.6195833 UTC))
    );

    let lock = storage.try_lock(&container).await.unwrap().unwrap();
    let status = storage.read_checkpoint(&container).await.unwrap();
    assert_eq!(
        (status.lease.state.as_str(), status.lease.status.as_str()),
        ("leased", "locked")
    );

    // A run that records itself but does not move the checkpoint.
    storage
        .write_checkpoint(&container, &lock, None, &last_run("run-1", 0))
        .await
        .unwrap();
    let state = storage.read_checkpoint(&container).await.unwrap();
    assert_eq!(
        state.checkpoint,
        Some(datetime!(2019-05-21 19:15:41.6195833 UTC))
    );
    assert_eq!(state.last_run.unwrap().run_id, "run-1");

    let checkpoint = datetime!(2024-01-13 14:00:00.1234567 UTC);
    storage
        .write_checkpoint(&container, &lock, Some(checkpoint), &last_run("run-2", 42))
        .await
        .unwrap();
    lock.release().await.unwrap();

    let state = storage.read_checkpoint(&container).await.unwrap();
    assert_eq!(state.checkpoint, Some(checkpoint));
    assert_eq!(state.lease.state, "available");
    let run = state.last_run.unwrap();
    assert_eq!(run, last_run("run-2", 42));

    let raw = helpers::raw_container_client(&container)
        .get_properties(None)
        .await
        .unwrap();
    let metadata =
        azure_storage_blob::models::BlobContainerClientGetPropertiesResultHeaders::metadata(&raw)
            .unwrap();
    assert_eq!(metadata["last_execution"], "2019-05-21 12:15:41.123456");
    assert_eq!(metadata["last_datetime"], "2024-01-13T14:00:00.1234567Z");
    assert_eq!(metadata["checkpoint_version"], "1");
}

#[tokio::test]
async fn sample_checkpoints_with_fewer_digits_are_read() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "digits").await;
    for (value, expected) in [
        (
            "2019-05-21T19:15:41.61Z",
            datetime!(2019-05-21 19:15:41.61 UTC),
        ),
        ("2019-05-21T19:15:41Z", datetime!(2019-05-21 19:15:41 UTC)),
        (
            "2019-05-21T19:15:41.619583+00:00",
            datetime!(2019-05-21 19:15:41.619583 UTC),
        ),
    ] {
        set_raw_metadata(&container, &[("last_datetime", value)]).await;
        let state = storage.read_checkpoint(&container).await.unwrap();
        assert_eq!(state.checkpoint, Some(expected), "{value}");
    }
}

#[tokio::test]
async fn an_unreadable_checkpoint_is_an_error_showing_the_value_and_the_fix() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "unreadable").await;
    set_raw_metadata(&container, &[("last_datetime", "21/05/2019 19:15")]).await;

    let error = storage.read_checkpoint(&container).await.unwrap_err();

    let Error::BadCheckpoint { value, .. } = &error else {
        panic!("expected BadCheckpoint, got {error}");
    };
    assert_eq!(value, "21/05/2019 19:15");
    let message = error.to_string();
    assert!(message.contains(&container), "{message}");
    assert!(message.contains("21/05/2019 19:15"), "{message}");
    assert!(
        message.contains("2024-01-13T14:00:00.0000000Z"),
        "{message}"
    );
}

#[tokio::test]
async fn two_runs_racing_for_one_job_exactly_one_proceeds() {
    let Some(first) = helpers::azurite().await else {
        return;
    };
    let second = helpers::storage_for(&helpers::azurite_connection_string());
    let container = new_container(&first, "race").await;

    let (a, b) = tokio::join!(first.try_lock(&container), second.try_lock(&container));
    let (a, b) = (a.unwrap(), b.unwrap());

    assert!(
        a.is_some() != b.is_some(),
        "exactly one run may hold the lock"
    );
    let winner = a.or(b).unwrap();
    assert!(second.try_lock(&container).await.unwrap().is_none());
    winner.release().await.unwrap();
    let next = second.try_lock(&container).await.unwrap();
    assert!(next.is_some(), "a released lock is free at once");
    next.unwrap().release().await.unwrap();
}

#[tokio::test]
async fn a_lease_left_by_a_killed_run_lapses_and_the_next_run_proceeds() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "lapse").await;
    let crashed = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();
    let taken_at = Instant::now();
    // A killed process neither renews nor releases: dropping the lock stops its renewal.
    drop(crashed);

    assert!(storage.try_lock(&container).await.unwrap().is_none());
    let next = loop {
        if let Some(lock) = storage.try_lock(&container).await.unwrap() {
            break lock;
        }
        assert!(
            taken_at.elapsed() < Duration::from_secs(25),
            "the lease did not lapse"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(taken_at.elapsed() >= Duration::from_secs(14));
    storage
        .write_checkpoint(
            &container,
            &next,
            Some(OffsetDateTime::UNIX_EPOCH),
            &last_run("next", 1),
        )
        .await
        .unwrap();
    next.release().await.unwrap();
}

#[tokio::test]
async fn a_checkpoint_write_under_a_taken_over_lease_is_refused_by_the_service() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let other_run = helpers::storage_for(&helpers::azurite_connection_string());
    let container = new_container(&storage, "takeover").await;
    let stale = storage.try_lock(&container).await.unwrap().unwrap();
    let before = datetime!(2024-01-13 14:00 UTC);
    storage
        .write_checkpoint(&container, &stale, Some(before), &last_run("stale", 1))
        .await
        .unwrap();

    // An operator breaks the lease and another run takes the job before the stale run's
    // renewer (every 20 s) notices anything: only the service can refuse the write now.
    other_run.break_lease(&container).await.unwrap();
    let current = other_run.try_lock(&container).await.unwrap().unwrap();
    assert!(!stale.lost().is_cancelled());

    let error = storage
        .write_checkpoint(
            &container,
            &stale,
            Some(datetime!(2024-01-13 15:00 UTC)),
            &last_run("stale", 2),
        )
        .await
        .unwrap_err();

    assert!(matches!(error, Error::LeaseMismatch { .. }), "{error}");
    assert!(
        stale.lost().is_cancelled(),
        "a refused lease id marks the lock lost"
    );
    let state = storage.read_checkpoint(&container).await.unwrap();
    assert_eq!(state.checkpoint, Some(before));
    assert_eq!(state.last_run.unwrap().run_id, "stale");
    current.release().await.unwrap();
}

#[tokio::test]
async fn a_checkpoint_write_under_a_broken_lease_is_refused_by_the_service() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "broken").await;
    let lock = storage.try_lock(&container).await.unwrap().unwrap();
    storage.break_lease(&container).await.unwrap();

    let error = storage
        .write_checkpoint(
            &container,
            &lock,
            Some(datetime!(2024-01-13 15:00 UTC)),
            &last_run("late", 2),
        )
        .await
        .unwrap_err();

    assert!(matches!(error, Error::LeaseLost { .. }), "{error}");
    assert_eq!(
        storage
            .read_checkpoint(&container)
            .await
            .unwrap()
            .checkpoint,
        None
    );
}

#[tokio::test]
async fn a_lock_whose_renewal_fails_reports_itself_lost() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "renewal").await;
    let lock = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();
    storage.break_lease(&container).await.unwrap();

    // Renewal runs every 5 s for a 15 s lease.
    tokio::time::timeout(Duration::from_secs(10), lock.lost().cancelled())
        .await
        .expect("the lock reports itself lost after a refused renewal");

    let error = storage
        .write_checkpoint(&container, &lock, None, &last_run("lost", 0))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::LeaseLost { .. }), "{error}");
}

#[tokio::test]
async fn a_lock_is_renewed_beyond_its_duration() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "renew").await;
    let lock = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();

    tokio::time::sleep(Duration::from_secs(20)).await;

    assert!(!lock.lost().is_cancelled());
    assert!(storage.try_lock(&container).await.unwrap().is_none());
    storage
        .write_checkpoint(&container, &lock, None, &last_run("long", 0))
        .await
        .unwrap();
    lock.release().await.unwrap();
}

const RECORDS: [&[u8]; 3] = [
    br#"{"id":"Directory_1","activityDateTime":"2024-01-13T14:00:01.1234567Z","x":1.50}"#,
    br#"{"id":"SSPR 2","activityDateTime":"2024-01-13T14:00:02Z","name":"Ren\u00e9e","u":"R\u00e9"}"#,
    "{\"id\":\"3\",\"displayName\":\"Zoë ✓\",\"n\":null}".as_bytes(),
];

#[tokio::test]
async fn every_format_reads_back_byte_for_byte() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "formats").await;
    let start = datetime!(2024-01-13 14:00 UTC);
    let end = datetime!(2024-01-13 15:00 UTC);

    for (seq, format, compression, content_type) in [
        (
            0,
            OutputFormat::GraphPage,
            Compression::None,
            "application/json",
        ),
        (
            1,
            OutputFormat::Ndjson,
            Compression::None,
            "application/x-ndjson",
        ),
        (
            2,
            OutputFormat::GraphPage,
            Compression::Gzip,
            "application/json",
        ),
        (
            3,
            OutputFormat::Ndjson,
            Compression::Gzip,
            "application/x-ndjson",
        ),
    ] {
        let name = BlobName::new(start, end, seq, format, compression);
        let uploaded = storage
            .upload_records(&container, &name, &RECORDS, format, compression)
            .await
            .unwrap();

        let stored = storage.download(&container, name.as_str()).await.unwrap();
        assert_eq!(stored.len() as u64, uploaded);
        let plain = match compression {
            Compression::None => stored.to_vec(),
            Compression::Gzip => {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&stored[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                plain
            }
        };
        let expected = match format {
            OutputFormat::GraphPage => [
                b"{\"value\":[".as_slice(),
                RECORDS[0],
                b",",
                RECORDS[1],
                b",",
                RECORDS[2],
                b"]}",
            ]
            .concat(),
            OutputFormat::Ndjson => {
                [RECORDS[0], b"\n", RECORDS[1], b"\n", RECORDS[2], b"\n"].concat()
            }
        };
        assert_eq!(plain, expected, "{name}");
        assert_eq!(plain, encode_plain(&RECORDS, format));

        let properties = helpers::raw_container_client(&container)
            .blob_client(name.as_str())
            .get_properties(None)
            .await
            .unwrap();
        assert_eq!(
            properties.content_type().unwrap().as_deref(),
            Some(content_type)
        );
        let encoding = properties.content_encoding().unwrap();
        match compression {
            Compression::None => assert_eq!(encoding, None),
            Compression::Gzip => assert_eq!(encoding.as_deref(), Some("gzip")),
        }
    }

    let listed = storage
        .list_blobs(&container, &BlobName::prefix_for_window(start, end))
        .await
        .unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed[0].starts_with("y=2024/m=01/d=13/h=14/20240113T140000.0000000Z_"));
    let seqs: Vec<u32> = listed.iter().filter_map(|n| BlobName::seq_of(n)).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    let other_window = storage
        .list_blobs(
            &container,
            &BlobName::prefix_for_window(end, end + time::Duration::HOUR),
        )
        .await
        .unwrap();
    assert!(other_window.is_empty());
}

#[tokio::test]
async fn a_body_larger_than_one_partition_is_uploaded_in_blocks_and_reads_back() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "large").await;
    let record = format!(r#"{{"id":"{}","pad":"{}"}}"#, 1, "x".repeat(4000));
    let records: Vec<&[u8]> = std::iter::repeat_n(record.as_bytes(), 1500).collect();
    let name = BlobName::new(
        datetime!(2024-01-13 14:00 UTC),
        datetime!(2024-01-13 14:05 UTC),
        0,
        OutputFormat::Ndjson,
        Compression::None,
    );

    let uploaded = storage
        .upload_records(
            &container,
            &name,
            &records,
            OutputFormat::Ndjson,
            Compression::None,
        )
        .await
        .unwrap();

    assert!(uploaded > entra_export::storage::UPLOAD_PARTITION_SIZE.get());
    let stored = storage.download(&container, name.as_str()).await.unwrap();
    assert_eq!(stored.len() as u64, uploaded);
    assert_eq!(
        stored.as_ref(),
        encode_plain(&records, OutputFormat::Ndjson)
    );

    // The condition also holds for a body committed as a block list: the same size with
    // other bytes (compared as the blob streams back in partitions) is refused.
    let other = format!(r#"{{"id":"{}","pad":"{}"}}"#, 1, "y".repeat(4000));
    let others: Vec<&[u8]> = std::iter::repeat_n(other.as_bytes(), 1500).collect();
    let error = storage
        .upload_records(
            &container,
            &name,
            &others,
            OutputFormat::Ndjson,
            Compression::None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::BlobExists { .. }), "{error}");
    let stored = storage.download(&container, name.as_str()).await.unwrap();
    assert_eq!(
        stored.as_ref(),
        encode_plain(&records, OutputFormat::Ndjson)
    );
    // The same bytes again: recognised as already written.
    assert_eq!(
        storage
            .upload_records(
                &container,
                &name,
                &records,
                OutputFormat::Ndjson,
                Compression::None,
            )
            .await
            .unwrap(),
        uploaded
    );
}

/// No secret in an error message: no SAS signature, no account key, no connection string.
fn assert_no_secret(message: &str) {
    assert!(!message.contains("sig="), "{message}");
    assert!(!message.contains(helpers::AZURITE_ACCOUNT_KEY), "{message}");
    assert!(!message.contains("AccountKey"), "{message}");
    assert!(!message.contains('?'), "a query string: {message}");
}

#[tokio::test]
async fn a_stored_blob_is_never_replaced() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let container = new_container(&storage, "noreplace").await;
    let name = BlobName::new(
        datetime!(2024-01-13 14:00 UTC),
        datetime!(2024-01-13 15:00 UTC),
        0,
        OutputFormat::GraphPage,
        Compression::Gzip,
    );
    let upload = |records: &'static [&'static [u8]]| {
        let (storage, container, name) = (storage.clone(), container.clone(), name.clone());
        async move {
            storage
                .upload_records(
                    &container,
                    &name,
                    records,
                    OutputFormat::GraphPage,
                    Compression::Gzip,
                )
                .await
        }
    };
    let first = upload(&RECORDS).await.unwrap();
    let stored = storage.download(&container, name.as_str()).await.unwrap();

    let error = upload(&RECORDS[..2]).await.unwrap_err();

    let Error::BlobExists {
        account,
        container: in_container,
        blob,
    } = &error
    else {
        panic!("expected BlobExists, got {error}");
    };
    assert_eq!(
        (account.as_str(), in_container.as_str(), blob.as_str()),
        (helpers::AZURITE_ACCOUNT, container.as_str(), name.as_str())
    );
    assert!(!error.is_transient());
    let message = error.to_string();
    assert!(message.contains(name.as_str()), "{message}");
    assert_no_secret(&message);
    assert_eq!(
        storage.download(&container, name.as_str()).await.unwrap(),
        stored,
        "the first blob is unchanged"
    );

    // Exactly the stored bytes (gzip is deterministic): the write is already done.
    assert_eq!(upload(&RECORDS).await.unwrap(), first);
    assert_eq!(
        storage.download(&container, name.as_str()).await.unwrap(),
        stored
    );
    assert_eq!(
        storage.list_blobs(&container, "").await.unwrap(),
        [name.as_str()]
    );
}

#[tokio::test]
async fn a_blob_write_whose_reply_was_lost_is_recognised_as_ours() {
    let Some((storage, faults)) = helpers::azurite_behind_proxy(Timeouts::default()).await else {
        return;
    };
    let container = new_container(&storage, "lostreply").await;
    let name = BlobName::new(
        datetime!(2024-01-13 14:00 UTC),
        datetime!(2024-01-13 15:00 UTC),
        7,
        OutputFormat::Ndjson,
        Compression::None,
    );
    faults.drop_reply_of_next("PUT", name.as_str());

    let uploaded = storage
        .upload_records(
            &container,
            &name,
            &RECORDS,
            OutputFormat::Ndjson,
            Compression::None,
        )
        .await
        .unwrap();

    assert_eq!(faults.replies_dropped(), 1, "{:?}", faults.requests());
    let puts = faults
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.ends_with(name.as_str()))
        .count();
    assert!(
        puts >= 2,
        "the SDK retried the write: {:?}",
        faults.requests()
    );
    let stored = storage.download(&container, name.as_str()).await.unwrap();
    assert_eq!(stored.len() as u64, uploaded);
    assert_eq!(
        stored.as_ref(),
        encode_plain(&RECORDS, OutputFormat::Ndjson)
    );
}

#[tokio::test]
async fn a_state_write_whose_reply_was_lost_is_recognised_as_ours() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let name = "audit/written-ids.json";
    let a = bytes::Bytes::from_static(b"{\"ids\":[1]}");
    let b = bytes::Bytes::from_static(b"{\"ids\":[1,2]}");
    let created = storage.save_state(name, a.clone(), None).await.unwrap();
    // A create retried after its reply was lost meets our own blob.
    assert_eq!(
        storage.save_state(name, a.clone(), None).await.unwrap(),
        created
    );
    let updated = storage
        .save_state(name, b.clone(), Some(&created))
        .await
        .unwrap();

    // The same update again with the ETag it was based on: the retry of a write that landed.
    let again = storage
        .save_state(name, b.clone(), Some(&created))
        .await
        .unwrap();
    assert_eq!(again, updated, "the current ETag");

    // Other bytes with that old ETag: another writer's change, refused as before.
    let error = storage
        .save_state(
            name,
            bytes::Bytes::from_static(b"{\"ids\":[1,3]}"),
            Some(&created),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::StateConflict { .. }), "{error}");
    assert_no_secret(&error.to_string());
    let (body, etag) = storage.load_state(name).await.unwrap().unwrap();
    assert_eq!((body, etag), (b, updated));
}

#[tokio::test]
async fn a_state_write_whose_reply_is_dropped_by_the_network_succeeds() {
    let Some((storage, faults)) = helpers::azurite_behind_proxy(Timeouts::default()).await else {
        return;
    };
    let name = "signin/written-ids.json";
    let first = storage
        .save_state(name, bytes::Bytes::from_static(b"{}"), None)
        .await
        .unwrap();
    faults.drop_reply_of_next("PUT", name);

    let body = bytes::Bytes::from_static(b"{\"ids\":[\"a\"]}");
    let saved = storage
        .save_state(name, body.clone(), Some(&first))
        .await
        .unwrap();

    assert_eq!(faults.replies_dropped(), 1, "{:?}", faults.requests());
    assert_ne!(saved, first);
    assert_eq!(storage.load_state(name).await.unwrap(), Some((body, saved)));
}

fn short_timeouts() -> Timeouts {
    Timeouts {
        per_try: Duration::from_secs(5),
        operation: Duration::from_secs(10),
        body: Duration::from_secs(2),
        per_mib: Duration::from_secs(1),
    }
}

#[tokio::test]
async fn a_state_read_that_stalls_mid_body_fails_within_its_deadline() {
    let Some((storage, faults)) = helpers::azurite_behind_proxy(short_timeouts()).await else {
        return;
    };
    let name = "audit/stalled.json";
    storage
        .save_state(name, bytes::Bytes::from_static(b"{\"ids\":[1]}"), None)
        .await
        .unwrap();
    faults.stall_after_headers(true);
    let started = Instant::now();

    let error = storage.load_state(name).await.unwrap_err();

    let elapsed = started.elapsed();
    // The body deadline: 2 s + 1 s for the (started) MiB.
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    assert!(faults.responses_stalled() >= 1);
    let Error::Timeout {
        operation, target, ..
    } = &error
    else {
        panic!("expected a timeout, got {error}");
    };
    assert_eq!(*operation, "read state blob");
    assert_eq!(target, &format!("{}/{name}", storage.state_container()));
    assert!(error.is_transient());
    let message = error.to_string();
    assert!(message.contains(name), "{message}");
    assert!(message.contains(helpers::AZURITE_ACCOUNT), "{message}");
    assert_no_secret(&message);

    faults.stall_after_headers(false);
    assert!(storage.load_state(name).await.unwrap().is_some());
}

#[tokio::test]
async fn a_listing_that_stalls_fails_within_its_deadline() {
    let Some((storage, faults)) = helpers::azurite_behind_proxy(short_timeouts()).await else {
        return;
    };
    let container = new_container(&storage, "stalledlist").await;
    faults.stall_after_headers(true);
    let started = Instant::now();

    let error = storage.list_blobs(&container, "y=").await.unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&container), "{message}");
    assert_no_secret(&message);
}

#[tokio::test]
async fn an_injected_server_error_is_retried() {
    let Some((storage, faults)) = helpers::azurite_behind_proxy(Timeouts::default()).await else {
        return;
    };
    let container = helpers::unique_container("retried");
    faults.fail_next_request_with(503);

    storage.ensure_container(&container).await.unwrap();

    assert!(faults.requests().len() >= 3, "{:?}", faults.requests());
    assert_eq!(
        storage
            .read_checkpoint(&container)
            .await
            .unwrap()
            .checkpoint,
        None
    );
}

#[tokio::test]
async fn a_stale_state_write_is_refused() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let name = "audit/seen-ids.json";

    assert_eq!(storage.load_state(name).await.unwrap(), None);
    let first = storage
        .save_state(name, bytes::Bytes::from_static(b"{\"ids\":[1]}"), None)
        .await
        .unwrap();
    let again = storage
        .save_state(name, bytes::Bytes::from_static(b"{\"ids\":[]}"), None)
        .await;
    assert!(
        matches!(again, Err(Error::StateConflict { .. })),
        "{again:?}"
    );

    let (body, etag) = storage.load_state(name).await.unwrap().unwrap();
    assert_eq!(body.as_ref(), b"{\"ids\":[1]}");
    assert_eq!(etag, first);
    let second = storage
        .save_state(
            name,
            bytes::Bytes::from_static(b"{\"ids\":[1,2]}"),
            Some(&etag),
        )
        .await
        .unwrap();
    assert_ne!(second, first);

    // A writer still holding the first ETag lost the race.
    let stale = storage
        .save_state(
            name,
            bytes::Bytes::from_static(b"{\"ids\":[1,3]}"),
            Some(&first),
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::StateConflict { .. }), "{stale}");
    assert!(stale.to_string().contains(name));
    let (body, etag) = storage.load_state(name).await.unwrap().unwrap();
    assert_eq!(body.as_ref(), b"{\"ids\":[1,2]}");
    assert_eq!(etag, second);
}

#[tokio::test]
async fn a_wrong_account_key_is_reported_clearly_within_seconds() {
    if helpers::azurite().await.is_none() {
        return;
    }
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let storage = helpers::storage_for(&helpers::connection_string(
        &helpers::azurite_url(),
        wrong_key,
    ));
    let started = Instant::now();

    let error = storage
        .ensure_container(&helpers::unique_container("wrongkey"))
        .await
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, Error::Auth { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("devstoreaccount1"), "{message}");
    assert!(message.contains("AccountKey"), "{message}");
    assert!(
        !message.contains(wrong_key) && !message.contains("sig="),
        "{message}"
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn an_unreachable_endpoint_is_reported_clearly_within_seconds() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = helpers::storage_for(&helpers::connection_string(
        &format!("http://127.0.0.1:{port}/devstoreaccount1"),
        helpers::AZURITE_ACCOUNT_KEY,
    ));
    let started = Instant::now();

    let error = storage.ensure_container("logs-audit").await.unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, Error::Unreachable { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("devstoreaccount1"), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(
        !message.contains("sig=") && !message.contains("?"),
        "{message}"
    );
    assert!(error.is_transient());
}

/// Collects everything a test logs.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn sas_tokens_and_keys_never_reach_the_logs_even_at_trace_level() {
    let Some(storage) = helpers::azurite().await else {
        return;
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let container = new_container(&storage, "logs").await;
    let lock = storage.try_lock(&container).await.unwrap().unwrap();
    let name = BlobName::new(
        datetime!(2024-01-13 14:00 UTC),
        datetime!(2024-01-13 15:00 UTC),
        0,
        OutputFormat::GraphPage,
        Compression::Gzip,
    );
    storage
        .upload_records(
            &container,
            &name,
            &RECORDS,
            OutputFormat::GraphPage,
            Compression::Gzip,
        )
        .await
        .unwrap();
    storage
        .write_checkpoint(&container, &lock, None, &last_run("logged", 3))
        .await
        .unwrap();
    lock.release().await.unwrap();
    let wrong = helpers::storage_for(&helpers::connection_string(
        &helpers::azurite_url(),
        "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=",
    ));
    let _ = wrong.ensure_container(&container).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(&container), "the capture works: {logs}");
    assert!(!logs.contains(helpers::AZURITE_ACCOUNT_KEY));
    for (at, _) in logs.match_indices("sig=") {
        let value = &logs[at + 4..];
        assert!(
            value.starts_with("REDACTED"),
            "a signature in the logs: {}",
            &logs[at..at + 40]
        );
    }
}

#[tokio::test]
async fn the_token_path_over_https_locks_checkpoints_and_writes_blobs() {
    let Some(storage) = helpers::azurite_oauth().await else {
        return;
    };
    assert_eq!(storage.account_name(), "devstoreaccount1");
    let container = new_container(&storage, "oauth").await;

    let lock = storage.try_lock(&container).await.unwrap().unwrap();
    let checkpoint = datetime!(2024-01-13 14:00 UTC);
    storage
        .write_checkpoint(&container, &lock, Some(checkpoint), &last_run("oauth", 3))
        .await
        .unwrap();
    let name = BlobName::new(
        checkpoint,
        checkpoint + time::Duration::HOUR,
        0,
        OutputFormat::Ndjson,
        Compression::Gzip,
    );
    storage
        .upload_records(
            &container,
            &name,
            &RECORDS,
            OutputFormat::Ndjson,
            Compression::Gzip,
        )
        .await
        .unwrap();
    lock.release().await.unwrap();

    assert_eq!(
        storage
            .read_checkpoint(&container)
            .await
            .unwrap()
            .checkpoint,
        Some(checkpoint)
    );
    assert_eq!(
        storage.list_blobs(&container, "y=2024/").await.unwrap(),
        [name.as_str()]
    );
    let saved = storage
        .save_state("oauth.json", bytes::Bytes::from_static(b"{}"), None)
        .await
        .unwrap();
    assert_eq!(
        storage.load_state("oauth.json").await.unwrap().unwrap().1,
        saved
    );
}
