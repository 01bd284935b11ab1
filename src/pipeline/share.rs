//! Graph's throttle budget shared by several processes (issue 12).
//!
//! Graph throttles per app and tenant (5 requests per 10 s), whichever process sends the
//! requests. On Flex Consumption `AuditTimer` and `SignInTimer` run on their own instances, so
//! two processes, each with its own [`Limiter`], draw on one budget. They coordinate through
//! storage: while a process runs a job it keeps a heartbeat blob for that job,
//! `graph-share/<job container>` in `STATE_CONTAINER` ([`Heartbeat`]: a random id per process,
//! the tenant, the time, whether the run goes on, the participants it sees and how long until
//! its recent requests fit its share). It writes it when the run starts and ends, when its view
//! or share changes and every [`REFRESH`], and reads the others' blobs every [`POLL`] (every
//! [`FAST_POLL`] while the processes do not agree, and just after a start): a listing and one
//! small download per other job. Blobs are only ever replaced, never deleted (the account SAS
//! has no delete permission).
//!
//! The *participants* are the processes with a fresh heartbeat (under [`STALE`] old, of this
//! tenant, run going on), this one always included, sorted by id; the one at position `i` of
//! `s` may use [`share_of`]`(max, i, s)` requests per window (3 and 2 of 5). There are at most as
//! many participants as jobs (each job's lock), two today. Budget split rather than time slots
//! (one start per `period / max` slot, the slots dealt out in turn by the wall clock): the shares
//! add up to the budget in every window whatever the hosts' clocks say, and each process keeps
//! its bursts; with slots, a start late in one slot and one early in the slot five later are
//! less than 10 s apart, so six starts fit in one of Graph's windows unless starts are confined
//! to the first instants of their slot, and clock skew between hosts eats that margin.
//!
//! A newcomer must not take its share while another process still uses the whole budget, and
//! nobody may take a larger share before the others have given theirs up: a process takes the
//! share of its view of the participants only when every other participant published the same
//! view (*agreement*); until then it uses the smaller of its last agreed share (0 for a
//! newcomer: it waits) and the share of its view. A process publishes its view after it has
//! applied the share that goes with it, so when a newcomer sees its view agreed, the others
//! have already lowered theirs. A higher share starts only once the starts that the others made
//! under their former shares have left Graph's window: each heartbeat says how long that takes
//! ([`Limiter::settle`]), counted from when this process first saw it. A run that ends writes
//! its heartbeat one last time with the run over, so the others take the budget back within a
//! poll; a process that dies stops counting after [`STALE`].
//!
//! Failures never fail a run: a heartbeat that cannot be written or read is a warning, and the
//! share in force stays (the whole budget for a process that never agreed with anyone, as
//! before this module); a process that waits for agreement longer than [`MAX_WAIT`] takes the
//! share of its view. The halving after a 429 and `Retry-After` apply on top, as always.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::throttle::{Limiter, share_of};
use crate::storage::Storage;
use crate::timestamp;

/// The heartbeat blobs' prefix in `STATE_CONTAINER`; one blob per job container.
pub const PREFIX: &str = "graph-share/";
/// The others' heartbeats are read this often while a job runs.
pub const POLL: Duration = Duration::from_secs(5);
/// A process writes its heartbeats when a run starts or ends, when its view or share changes,
/// and at least this often (well inside [`STALE`]).
pub const REFRESH: Duration = Duration::from_secs(15);
/// ... and this often while the participants do not agree, and for [`FAST_AFTER_START`] after
/// a run starts (two processes that start together find each other at once).
pub const FAST_POLL: Duration = Duration::from_secs(1);
/// How long fast polling lasts after a run starts.
pub const FAST_AFTER_START: Duration = Duration::from_secs(5);
/// A heartbeat older than this no longer counts: its process died or lost storage.
pub const STALE: Duration = Duration::from_secs(40);
/// The longest a process waits for the others to agree before it takes the share of its view.
pub const MAX_WAIT: Duration = Duration::from_secs(45);
/// One round of heartbeats (write, list, read, write) gets this long; a run start waits at most
/// this long for it.
pub const ROUND_DEADLINE: Duration = Duration::from_secs(10);

/// The content of a heartbeat blob (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The writer's process id (a random UUID per process).
    pub process: String,
    /// The tenant whose budget is shared; heartbeats of other tenants are ignored.
    pub tenant: String,
    /// The job container (informational; the blob name says it too).
    pub job: String,
    /// When it was written, by the writer's clock (RFC 3339).
    pub time: String,
    /// Whether the run goes on; `false` in the last heartbeat of a run.
    pub running: bool,
    /// The participants the writer saw, sorted, when it applied its share.
    pub view: Vec<String>,
    /// The share the writer uses (informational).
    pub share: u32,
    /// Milliseconds from the write until the writer's recent requests fit its share (0 when
    /// the run is over: until they have all left Graph's window).
    pub settle_ms: u64,
}

/// A heartbeat read from storage, and when this process first saw that version of it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The heartbeat.
    pub heartbeat: Heartbeat,
    /// When it was first read (its `settle_ms` counts from here: never early).
    pub first_seen: Instant,
}

/// What a round concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The participants, sorted (this process included).
    pub view: Vec<String>,
    /// Whether every other participant published the same view.
    pub agreed: bool,
    /// The share of the view (this process's position among the participants).
    pub target: u32,
    /// The share to use now.
    pub share: u32,
    /// A higher share than the one in force starts no earlier than this.
    pub not_before: Instant,
}

/// The sorted, distinct participants: `me` and every process of `tenant` with a fresh
/// heartbeat of a run that goes on. A heartbeat from the future (another host's clock ahead)
/// counts as fresh.
pub fn participants(me: &str, tenant: &str, now: OffsetDateTime, seen: &[Seen]) -> Vec<String> {
    let mut view: BTreeSet<String> = seen
        .iter()
        .map(|s| &s.heartbeat)
        .filter(|h| h.running && h.tenant == tenant && fresh(h, now))
        .map(|h| h.process.clone())
        .collect();
    view.insert(me.to_owned());
    view.into_iter().collect()
}

fn fresh(heartbeat: &Heartbeat, now: OffsetDateTime) -> bool {
    timestamp::parse(&heartbeat.time).is_ok_and(|t| now - t < STALE)
}

/// Decides the share of `me` from the heartbeats read. `agreed_share` is the share of the last
/// agreement (`None` for a newcomer). `now` is the wall clock (freshness), `instant` the
/// monotonic one (settle times).
pub fn decide(
    me: &str,
    tenant: &str,
    max: u32,
    agreed_share: Option<u32>,
    now: OffsetDateTime,
    instant: Instant,
    seen: &[Seen],
) -> Decision {
    let view = participants(me, tenant, now, seen);
    let index = view.iter().position(|p| p == me).unwrap_or(0);
    let target = share_of(max, index, view.len());
    // Each other participant's latest heartbeat says what it sees.
    let mut latest: HashMap<&str, &Heartbeat> = HashMap::new();
    for heartbeat in seen.iter().map(|s| &s.heartbeat) {
        if heartbeat.process == me
            || heartbeat.tenant != tenant
            || !heartbeat.running
            || !fresh(heartbeat, now)
        {
            continue;
        }
        let newer = latest.get(heartbeat.process.as_str()).is_none_or(|known| {
            timestamp::parse(&heartbeat.time).ok() > timestamp::parse(&known.time).ok()
        });
        if newer {
            latest.insert(&heartbeat.process, heartbeat);
        }
    }
    let agreed = latest.values().all(|h| h.view == view);
    let share = if agreed {
        target
    } else {
        agreed_share.unwrap_or(0).min(target)
    };
    // A higher share waits for the requests of the others (running or just stopped) to leave
    // the window, as each of them said.
    let not_before = seen
        .iter()
        .filter(|s| {
            s.heartbeat.process != me && s.heartbeat.tenant == tenant && fresh(&s.heartbeat, now)
        })
        .map(|s| s.first_seen + Duration::from_millis(s.heartbeat.settle_ms))
        .fold(instant, Instant::max);
    Decision {
        view,
        agreed,
        target,
        share,
        not_before,
    }
}

/// One process's side of the sharing: its heartbeats and its limiter's share. One per process,
/// shared by its runs ([`GraphShare::join`] when a run starts, [`Membership::leave`] when it
/// ends).
pub struct GraphShare {
    process: String,
    tenant: String,
    storage: Storage,
    container: String,
    limiter: Arc<Limiter>,
    /// [`ROUND_DEADLINE`] unless set for tests.
    round_deadline: Duration,
    jobs: Mutex<Jobs>,
    state: tokio::sync::Mutex<ShareState>,
}

impl std::fmt::Debug for GraphShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphShare")
            .field("process", &self.process)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

/// The job containers whose runs go on in this process, and the heartbeat loop.
#[derive(Default)]
struct Jobs {
    running: BTreeSet<String>,
    stop_loop: Option<CancellationToken>,
    last_start: Option<Instant>,
}

/// What the rounds remember (a round holds it, so rounds never interleave).
#[derive(Default)]
struct ShareState {
    /// The last view applied; empty when no run goes on.
    view: Vec<String>,
    /// The share of the last agreement; `None` until the first one (and after the last run).
    agreed: Option<u32>,
    /// Since when the participants have not agreed.
    waiting_since: Option<Instant>,
    /// When each heartbeat blob's current version was first read: (blob, its time) -> instant.
    first_seen: HashMap<(String, String), Instant>,
    /// When the heartbeats of every run were last written, with the view and share they said.
    written: Option<(Instant, Vec<String>, u32)>,
    /// Whether the last round failed (to warn once per streak).
    failing: bool,
    /// The share and view last logged.
    logged: Option<(u32, Vec<String>)>,
}

/// A run's membership; [`Membership::leave`] when the run ends (dropping it leaves too, without
/// waiting for the last heartbeat to be written).
#[must_use = "leave() when the run ends"]
pub struct Membership {
    share: Option<Arc<GraphShare>>,
    job: String,
}

impl Membership {
    /// The run ended: writes the job's last heartbeat (run over, and when its requests leave
    /// Graph's window) so the other processes take the budget back; stops the heartbeats when
    /// no other run of this process goes on.
    pub async fn leave(mut self) {
        if let Some(share) = self.share.take() {
            share.leave(std::mem::take(&mut self.job)).await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(share) = self.share.take() {
            let job = std::mem::take(&mut self.job);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { share.leave(job).await });
            } else {
                share.forget(&job);
            }
        }
    }
}

impl GraphShare {
    /// The sharing of `limiter`'s budget for this process, with heartbeats in `storage`'s
    /// state container. No I/O until a run joins.
    pub fn new(storage: Storage, limiter: Arc<Limiter>, tenant: &str) -> GraphShare {
        GraphShare {
            process: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.to_owned(),
            container: storage.state_container().to_owned(),
            storage,
            limiter,
            round_deadline: ROUND_DEADLINE,
            jobs: Mutex::default(),
            state: tokio::sync::Mutex::default(),
        }
    }

    /// The same with another deadline for a round of heartbeats (tests).
    pub fn with_round_deadline(mut self, deadline: Duration) -> GraphShare {
        self.round_deadline = deadline;
        self
    }

    /// This process's id in the heartbeats.
    pub fn process_id(&self) -> &str {
        &self.process
    }

    /// A run of the job whose container is `job` starts: announces it, reads the others'
    /// heartbeats and sets the limiter's share, all before the run's first Graph request
    /// (within [`ROUND_DEADLINE`]; a failure is a warning and the share in force stays).
    pub async fn join(self: &Arc<Self>, job: &str) -> Membership {
        {
            let mut jobs = self.jobs();
            jobs.running.insert(job.to_owned());
            jobs.last_start = Some(Instant::now());
            if jobs.stop_loop.is_none() {
                let stop = CancellationToken::new();
                jobs.stop_loop = Some(stop.clone());
                tokio::spawn(self.clone().heartbeats(stop));
            }
        }
        self.round_within(Some(job)).await;
        Membership {
            share: Some(self.clone()),
            job: job.to_owned(),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes the job; `true` when it was the last one (the loop is stopped).
    fn forget(&self, job: &str) -> bool {
        let mut jobs = self.jobs();
        jobs.running.remove(job);
        if jobs.running.is_empty() {
            if let Some(stop) = jobs.stop_loop.take() {
                stop.cancel();
            }
            true
        } else {
            false
        }
    }

    async fn leave(&self, job: String) {
        let last = self.forget(&job);
        let mut state = self.state.lock().await;
        // When the process sends no more requests, its share is 0: the others wait until its
        // last requests have left the window.
        let share = if last { 0 } else { self.limiter.status().share };
        let heartbeat = self.heartbeat(&job, false, &state.view, share);
        let written = tokio::time::timeout(self.round_deadline, self.write(&heartbeat)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                error = %error,
                "could not write the last Graph budget heartbeat of the run; the other processes take the budget back within {} s",
                STALE.as_secs()
            ),
            Err(_) => tracing::warn!(
                "writing the last Graph budget heartbeat of the run timed out; the other processes take the budget back within {} s",
                STALE.as_secs()
            ),
        }
        if last && self.jobs().running.is_empty() {
            *state = ShareState::default();
            self.limiter.set_share(self.limiter.max(), Instant::now());
        }
    }

    /// Rounds every [`POLL`] (or [`FAST_POLL`]) until `stop`.
    async fn heartbeats(self: Arc<Self>, stop: CancellationToken) {
        let mut agreed = false;
        loop {
            let fast = !agreed
                || self
                    .jobs()
                    .last_start
                    .is_some_and(|start| start.elapsed() < FAST_AFTER_START);
            let wait = if fast { FAST_POLL } else { POLL };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if let Some(decision) = self.round_within(None).await {
                agreed = decision.agreed;
            }
        }
    }

    /// One round under [`ROUND_DEADLINE`]; failures are logged (once per streak).
    async fn round_within(&self, announce: Option<&str>) -> Option<Decision> {
        let result = tokio::time::timeout(self.round_deadline, self.round(announce)).await;
        let mut state = self.state.lock().await;
        match result {
            Ok(Ok(decision)) => {
                if state.failing {
                    tracing::info!("Graph budget heartbeats work again");
                }
                state.failing = false;
                decision
            }
            Ok(Err(error)) => {
                if !state.failing {
                    tracing::warn!(
                        error = %error,
                        throttle.share = self.limiter.status().share,
                        "could not share Graph's throttle budget with other processes through storage; keeping the share in force"
                    );
                }
                state.failing = true;
                None
            }
            Err(_) => {
                if !state.failing {
                    tracing::warn!(
                        after_ms =
                            u64::try_from(self.round_deadline.as_millis()).unwrap_or(u64::MAX),
                        throttle.share = self.limiter.status().share,
                        "Graph budget heartbeats timed out; keeping the share in force"
                    );
                }
                state.failing = true;
                None
            }
        }
    }

    /// Announces `announce` (a run that starts), reads the heartbeats, applies the share and
    /// writes the heartbeats of every run of this process with the view that goes with it.
    /// `None` when no run goes on any more.
    async fn round(
        &self,
        announce: Option<&str>,
    ) -> Result<Option<Decision>, crate::storage::Error> {
        let mut state = self.state.lock().await;
        let running: Vec<String> = self.jobs().running.iter().cloned().collect();
        if running.is_empty() {
            return Ok(None);
        }
        if let Some(job) = announce {
            let view = if state.view.is_empty() {
                vec![self.process.clone()]
            } else {
                state.view.clone()
            };
            let share = self.limiter.status().share;
            self.write(&self.heartbeat(job, true, &view, share)).await?;
        }
        let names = self.storage.list_blobs(&self.container, PREFIX).await?;
        let theirs: Vec<&String> = names
            .iter()
            .filter(|name| {
                !running
                    .iter()
                    .any(|job| name.strip_prefix(PREFIX) == Some(job.as_str()))
            })
            .collect();
        let reads = futures::future::join_all(
            theirs
                .iter()
                .map(|name| self.storage.read_small_blob(&self.container, name)),
        )
        .await;
        let instant = Instant::now();
        let now = OffsetDateTime::now_utc();
        let mut seen = Vec::new();
        let mut first_seen = HashMap::new();
        for (name, read) in theirs.into_iter().zip(reads) {
            let Some(body) = read? else { continue };
            let Ok(heartbeat) = serde_json::from_slice::<Heartbeat>(&body) else {
                tracing::debug!(blob.name = %name, "not a Graph budget heartbeat; ignored");
                continue;
            };
            let key = (name.clone(), heartbeat.time.clone());
            let at = state.first_seen.get(&key).copied().unwrap_or(instant);
            first_seen.insert(key, at);
            seen.push(Seen {
                heartbeat,
                first_seen: at,
            });
        }
        state.first_seen = first_seen;
        let mut decision = decide(
            &self.process,
            &self.tenant,
            self.limiter.max(),
            state.agreed,
            now,
            instant,
            &seen,
        );
        if decision.agreed {
            state.agreed = Some(decision.share);
            state.waiting_since = None;
        } else if decision.share < decision.target {
            let since = *state.waiting_since.get_or_insert(instant);
            if instant.duration_since(since) >= MAX_WAIT {
                tracing::warn!(
                    participants = decision.view.len(),
                    throttle.share = decision.target,
                    "the other processes sharing Graph's budget did not confirm within {} s; taking this process's share anyway",
                    MAX_WAIT.as_secs()
                );
                decision.share = decision.target;
                state.agreed = Some(decision.target);
                state.waiting_since = None;
            }
        }
        self.limiter.set_share(decision.share, decision.not_before);
        let logged = Some((decision.share, decision.view.clone()));
        if state.logged != logged {
            state.logged = logged;
            tracing::info!(
                participants = decision.view.len(),
                agreed = decision.agreed,
                throttle.share = decision.share,
                throttle.max = self.limiter.max(),
                // A raise waits for the others' requests to leave the window.
                throttle.share_from_ms = if self.limiter.status().share < decision.share {
                    u64::try_from(
                        decision
                            .not_before
                            .saturating_duration_since(instant)
                            .as_millis(),
                    )
                    .unwrap_or(u64::MAX)
                } else {
                    0
                },
                "this process's share of Graph's throttle budget"
            );
        }
        state.view = decision.view.clone();
        let share = self.limiter.status().share;
        let due = state.written.as_ref().is_none_or(|(at, view, said)| {
            *view != decision.view || *said != share || at.elapsed() >= REFRESH
        });
        if due {
            for job in &running {
                self.write(&self.heartbeat(job, true, &decision.view, share))
                    .await?;
            }
            state.written = Some((Instant::now(), decision.view.clone(), share));
        }
        Ok(Some(decision))
    }

    fn heartbeat(&self, job: &str, running: bool, view: &[String], share: u32) -> Heartbeat {
        let settle = self.limiter.settle(share);
        Heartbeat {
            process: self.process.clone(),
            tenant: self.tenant.clone(),
            job: job.to_owned(),
            time: timestamp::format(OffsetDateTime::now_utc()),
            running,
            view: view.to_vec(),
            share,
            settle_ms: u64::try_from(settle.as_millis()).unwrap_or(u64::MAX),
        }
    }

    async fn write(&self, heartbeat: &Heartbeat) -> Result<(), crate::storage::Error> {
        let body = serde_json::to_vec(heartbeat).expect("a heartbeat serialises");
        self.storage
            .put_small_blob(
                &self.container,
                &format!("{PREFIX}{}", heartbeat.job),
                Bytes::from(body),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "tenant-1";

    fn at(seconds_ago: i64) -> String {
        let now = OffsetDateTime::now_utc();
        timestamp::format(now - time::Duration::seconds(seconds_ago))
    }

    fn beat(process: &str, seconds_ago: i64, running: bool, view: &[&str]) -> Heartbeat {
        Heartbeat {
            process: process.to_owned(),
            tenant: TENANT.to_owned(),
            job: format!("{process}-job"),
            time: at(seconds_ago),
            running,
            view: view.iter().map(|&p| p.to_owned()).collect(),
            share: 0,
            settle_ms: 0,
        }
    }

    fn seen(heartbeats: Vec<Heartbeat>) -> Vec<Seen> {
        let now = Instant::now();
        heartbeats
            .into_iter()
            .map(|heartbeat| Seen {
                heartbeat,
                first_seen: now,
            })
            .collect()
    }

    fn decide_now(me: &str, agreed: Option<u32>, heartbeats: Vec<Heartbeat>) -> Decision {
        decide(
            me,
            TENANT,
            5,
            agreed,
            OffsetDateTime::now_utc(),
            Instant::now(),
            &seen(heartbeats),
        )
    }

    #[test]
    fn participants_are_fresh_running_processes_of_the_tenant_sorted() {
        let mut other_tenant = beat("a", 1, true, &["a"]);
        other_tenant.tenant = "tenant-2".to_owned();
        let heartbeats = seen(vec![
            beat("c", 1, true, &["c"]),
            beat("c", 3, true, &["c"]),
            beat("a", 39, true, &["a"]),
            beat("d", 41, true, &["d"]),
            beat("e", 1, false, &["e"]),
            beat("f", -30, true, &["f"]),
            other_tenant,
        ]);
        let now = OffsetDateTime::now_utc();
        // "d" is stale, "e" stopped, the other tenant's "a" is not ours; a heartbeat from the
        // future (a clock ahead) counts; "b" (me) always does; every id once, sorted.
        assert_eq!(
            participants("b", TENANT, now, &heartbeats),
            ["a", "b", "c", "f"]
        );
        let mut shuffled = heartbeats.clone();
        shuffled.reverse();
        assert_eq!(
            participants("b", TENANT, now, &shuffled),
            ["a", "b", "c", "f"],
            "the order of the blobs does not matter"
        );
        assert_eq!(participants("b", TENANT, now, &[]), ["b"]);
    }

    #[test]
    fn alone_takes_the_whole_budget() {
        let decision = decide_now("a", None, vec![beat("b", 60, true, &["a", "b"])]);
        assert_eq!(decision.view, ["a"]);
        assert!(decision.agreed);
        assert_eq!((decision.target, decision.share), (5, 5));
    }

    #[test]
    fn a_newcomer_waits_until_the_others_see_it() {
        // "b" starts while "a" runs alone: "a" has not seen "b" yet.
        let decision = decide_now("b", None, vec![beat("a", 2, true, &["a"])]);
        assert_eq!(decision.view, ["a", "b"]);
        assert!(!decision.agreed);
        assert_eq!((decision.target, decision.share), (2, 0));
        // "a" reads "b"'s view, which holds both: agreed, "a" drops to 3 at once.
        let decision = decide_now("a", Some(5), vec![beat("b", 0, true, &["a", "b"])]);
        assert!(decision.agreed);
        assert_eq!(decision.share, 3);
        // "a" published the same view: "b" takes its 2.
        let decision = decide_now("b", None, vec![beat("a", 0, true, &["a", "b"])]);
        assert!(decision.agreed);
        assert_eq!(decision.share, 2);
    }

    #[test]
    fn without_agreement_no_share_grows() {
        // "a" and "b" agreed on 3 + 2; "c" appears: until all three agree, "a" keeps the
        // smaller of its agreed share and the share of the new view.
        let decision = decide_now(
            "a",
            Some(3),
            vec![beat("b", 1, true, &["a", "b"]), beat("c", 1, true, &["c"])],
        );
        assert_eq!(decision.view, ["a", "b", "c"]);
        assert!(!decision.agreed);
        assert_eq!((decision.target, decision.share), (2, 2));
        let decision = decide_now(
            "c",
            None,
            vec![
                beat("a", 1, true, &["a", "b"]),
                beat("b", 1, true, &["a", "b"]),
            ],
        );
        assert_eq!((decision.target, decision.share), (1, 0));
        // The latest heartbeat of a process (one per job) is the one that counts.
        let decision = decide_now(
            "b",
            Some(2),
            vec![
                beat("a", 1, true, &["a", "b"]),
                beat("a", 20, true, &["a"]),
                beat("a", 50, true, &["x"]),
            ],
        );
        assert!(decision.agreed);
        let decision = decide_now(
            "b",
            Some(2),
            vec![beat("a", 20, true, &["a", "b"]), beat("a", 1, true, &["a"])],
        );
        assert!(!decision.agreed, "a's latest view does not hold b");
        assert_eq!(decision.share, 2, "b keeps its agreed share, no more");
    }

    #[test]
    fn a_higher_share_waits_for_the_others_to_settle() {
        let t0 = Instant::now();
        let mut stopped = beat("b", 2, false, &["a", "b"]);
        stopped.settle_ms = 7_000;
        let mut running = beat("c", 2, true, &["a", "c"]);
        running.settle_ms = 3_000;
        let mut stale = beat("d", 50, false, &["d"]);
        stale.settle_ms = 60_000;
        let heartbeats = vec![
            Seen {
                heartbeat: stopped,
                first_seen: t0,
            },
            Seen {
                heartbeat: running,
                first_seen: t0 + Duration::from_secs(1),
            },
            Seen {
                heartbeat: stale,
                first_seen: t0,
            },
        ];
        let decision = decide(
            "a",
            TENANT,
            5,
            Some(2),
            OffsetDateTime::now_utc(),
            t0 + Duration::from_secs(2),
            &heartbeats,
        );
        assert_eq!(decision.view, ["a", "c"], "b stopped, d is stale");
        assert!(decision.agreed);
        assert_eq!(decision.share, 3);
        // b's last requests leave the window 7 s after its heartbeat was first seen.
        assert_eq!(decision.not_before, t0 + Duration::from_secs(7));
    }

    #[test]
    fn heartbeats_round_trip_as_json() {
        let heartbeat = beat("a", 0, true, &["a", "b"]);
        let json = serde_json::to_string(&heartbeat).unwrap();
        assert!(json.contains("\"process\":\"a\""), "{json}");
        assert_eq!(serde_json::from_str::<Heartbeat>(&json).unwrap(), heartbeat);
    }
}

#[cfg(test)]
mod failure_tests {
    use super::*;
    use crate::config::{Compression, OutputFormat, StorageConfig, StorageTarget};
    use secrecy::SecretString;

    /// A storage account on a port where nothing listens: every request is refused.
    fn unreachable_storage() -> Storage {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let connection = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=AAAAAAAAAAAAAAAAAAAAAA==;BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1"
        );
        let config = StorageConfig {
            target: StorageTarget::ConnectionString(SecretString::from(connection)),
            state_container: "state".to_owned(),
            max_records_per_blob: 1000,
            format: OutputFormat::GraphPage,
            compression: Compression::None,
        };
        let http = crate::http::build_client(None).unwrap();
        Storage::new(&config, None, http).unwrap()
    }

    #[tokio::test]
    async fn heartbeats_that_fail_neither_fail_nor_hold_a_run() {
        let limiter = Arc::new(Limiter::new(5));
        let deadline = Duration::from_millis(500);
        let share = Arc::new(
            GraphShare::new(unreachable_storage(), limiter.clone(), "tenant")
                .with_round_deadline(deadline),
        );
        let started = std::time::Instant::now();
        let membership = share.join("logs-audit").await;
        assert!(started.elapsed() < deadline * 2, "{:?}", started.elapsed());
        // The whole budget, as a process that never agreed with anyone.
        assert_eq!(limiter.status().share, 5);
        let admitted = std::time::Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert!(admitted.elapsed() < Duration::from_millis(100));
        membership.leave().await;
        assert_eq!(limiter.status().share, 5);
        assert!(share.jobs().running.is_empty());
        assert!(share.jobs().stop_loop.is_none(), "the heartbeats stopped");
    }
}
