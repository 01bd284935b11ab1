//! The pipeline's errors: why a run failed, each naming what it was doing and what happened to
//! the checkpoint.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Storage failed before any work (containers, lock, checkpoint).
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    /// The written-ids state blob could not be read.
    #[error("could not read the state blob `{name}`: {source}")]
    ReadState {
        /// The state blob.
        name: String,
        /// The cause.
        #[source]
        source: crate::storage::Error,
    },
    /// The written-ids state blob is not what this build writes.
    #[error("state blob `{name}`: {source}")]
    BadState {
        /// The state blob.
        name: String,
        /// What is wrong.
        #[source]
        source: super::dedup::StateError,
    },
    /// The range cannot be fetched (wholly before the retention).
    #[error("{0}")]
    Range(String),
    /// The checkpoint lies ahead of now.
    #[error(
        "the checkpoint `last_datetime` {checkpoint} is ahead of the time now ({now}{source_of_now}): no record after it exists yet, so nothing would ever be fetched; set it back with `entra-export checkpoint set <job> <time>` (or fix the clock that wrote it)"
    )]
    FutureCheckpoint {
        /// The stored checkpoint.
        checkpoint: String,
        /// Now, by the best clock known.
        now: String,
        /// Which clock said so.
        source_of_now: &'static str,
    },
    /// The lease renewal failed: another run may own the job now.
    #[error("lost the run lock (lease renewal failed): {checkpoint}")]
    LockLost {
        /// What happened to the checkpoint.
        checkpoint: String,
    },
    /// Making progress durable failed.
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Why a commit failed, and what it means for the checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The state blob could not be saved: the checkpoint was not moved.
    #[error("could not save the written-ids state, the checkpoint was not moved: {0}")]
    State(#[source] crate::storage::Error),
    /// The state is saved but the checkpoint write failed.
    #[error("blobs and state are saved but the checkpoint could not be written: {0}")]
    Checkpoint(#[source] crate::storage::Error),
}
