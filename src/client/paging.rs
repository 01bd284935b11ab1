//! Walking one time window: nextLink paging as a `Stream`, with window restarts and splits.
//!
//! The walk keeps a stack of windows still to fetch (initially the requested one) and a cursor
//! in the current window (its next URL). Per page:
//! - success: records outside the window are set apart (quarantined by the consumer), the
//!   nextLink is checked against the endpoint, and the page is yielded; no nextLink ends the
//!   window;
//! - expired skip token (400 on a nextLink): the window restarts from its first page;
//! - timeouts or server errors through every attempt: the window is split in half and both
//!   halves are pushed (earlier half first), unless a half would be narrower than
//!   `GRAPH_MIN_WINDOW`;
//! - anything else: the error is yielded and the stream ends.
//!
//! Every page is fetched within the stream's [`FetchLimits`]: under a deadline a page gives up
//! early (so that the split above happens while the run can still fetch both halves), and a
//! `Retry-After` past the deadline ends the stream with `Throttled` (never split or restarted).

use std::sync::Arc;

use futures::Stream;
use time::OffsetDateTime;
use tracing::Instrument;
use url::Url;

use super::error::{Error, PageRef};
use super::page::{Page, quarantine_outside};
use super::{FetchLimits, FetchStats, PagedClient};
use crate::job::JobSpec;

/// See [`PagedClient::fetch_window`].
pub(super) fn window_stream(
    client: PagedClient,
    job: JobSpec,
    start: OffsetDateTime,
    end: OffsetDateTime,
    stats: Arc<FetchStats>,
    limits: FetchLimits,
) -> impl Stream<Item = Result<Page, Error>> + Send + 'static {
    let (start, end) = (ceil_to_tick(start), ceil_to_tick(end));
    let span = tracing::info_span!(
        "graph.fetch_window",
        job = job.name,
        window.start = %crate::timestamp::format(start),
        window.end = %crate::timestamp::format(end),
    );
    let pending = if start < end {
        vec![Window {
            start,
            end,
            restarts: 0,
        }]
    } else {
        Vec::new()
    };
    let walk = Walk {
        client,
        job,
        stats,
        limits,
        pending,
        cursor: None,
        next_index: 0,
        finished: false,
    };
    futures::stream::unfold(walk, move |mut walk| {
        let span = span.clone();
        async move {
            let item = walk.next().instrument(span).await?;
            Some((item, walk))
        }
    })
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: OffsetDateTime,
    end: OffsetDateTime,
    restarts: u32,
}

struct Cursor {
    window: Window,
    url: Url,
    page_in_window: usize,
}

struct Walk {
    client: PagedClient,
    job: JobSpec,
    stats: Arc<FetchStats>,
    limits: FetchLimits,
    /// Windows still to fetch; the last is next.
    pending: Vec<Window>,
    cursor: Option<Cursor>,
    next_index: usize,
    finished: bool,
}

impl Walk {
    async fn next(&mut self) -> Option<Result<Page, Error>> {
        if self.finished {
            return None;
        }
        loop {
            let cursor = match self.cursor.take() {
                Some(cursor) => cursor,
                None => {
                    let window = self.pending.pop()?;
                    self.first_page(window)
                }
            };
            let at = PageRef {
                path: cursor.url.path().to_owned(),
                index: self.next_index,
            };
            match self.page(&cursor, &at).await {
                Ok((mut page, next)) => {
                    self.next_index += 1;
                    self.cursor = next.map(|url| Cursor {
                        window: cursor.window,
                        url,
                        page_in_window: cursor.page_in_window + 1,
                    });
                    page.more = self.cursor.is_some() || !self.pending.is_empty();
                    return Some(Ok(page));
                }
                Err(error) => {
                    if let Some(retry) = self.recover(cursor.window, &error) {
                        self.cursor = retry;
                        continue;
                    }
                    self.finished = true;
                    return Some(Err(error));
                }
            }
        }
    }

    fn first_page(&self, window: Window) -> Cursor {
        Cursor {
            window,
            url: self.client.window_url(&self.job, window.start, window.end),
            page_in_window: 0,
        }
    }

    async fn page(&self, cursor: &Cursor, at: &PageRef) -> Result<(Page, Option<Url>), Error> {
        let via_next_link = cursor.page_in_window > 0;
        let parsed = self
            .client
            .fetch_page(
                &cursor.url,
                &self.job,
                at,
                &self.stats,
                via_next_link,
                self.limits,
            )
            .await?;
        let mut parsed = parsed;
        quarantine_outside(
            &mut parsed.page,
            cursor.window.start,
            cursor.window.end,
            &self.job,
        );
        let next = match parsed.next_link.as_deref() {
            Some(link) => Some(self.client.check_next_link(link, at)?),
            None => None,
        };
        if next.as_ref() == Some(&cursor.url) {
            return Err(Error::InvalidPage {
                page: at.clone(),
                reason: "its nextLink repeats the request it answers (paging would never end)"
                    .into(),
            });
        }
        let mut page = parsed.page;
        page.window_start = Some(cursor.window.start);
        Ok((page, next))
    }

    /// What to do after `error` in `window`: `Some(cursor)` to continue (restart, or `None`
    /// inside to take the next pending window after a split), `None` to give up.
    fn recover(&mut self, window: Window, error: &Error) -> Option<Option<Cursor>> {
        let policy = self.client.retry_policy();
        let format = crate::timestamp::format;
        if matches!(error, Error::SkipTokenExpired { .. })
            && window.restarts < policy.window_restarts
        {
            super::FetchStats::add(&self.stats.window_restarts);
            tracing::warn!(
                window.start = %format(window.start),
                window.end = %format(window.end),
                window.restarts = window.restarts + 1,
                error = %error,
                "graph skip token expired: restarting the window from its first page"
            );
            let restarted = Window {
                restarts: window.restarts + 1,
                ..window
            };
            return Some(Some(self.first_page(restarted)));
        }
        if error.warrants_split() {
            let half = (window.end - window.start) / 2;
            let min = time::Duration::try_from(self.client.inner.min_window).ok()?;
            if half >= min {
                let mid = ceil_to_tick(window.start + half);
                super::FetchStats::add(&self.stats.window_splits);
                tracing::warn!(
                    window.start = %format(window.start),
                    window.end = %format(window.end),
                    window.mid = %format(mid),
                    error = %error,
                    "graph window keeps failing: splitting it in half"
                );
                self.pending.push(Window {
                    start: mid,
                    end: window.end,
                    restarts: 0,
                });
                self.pending.push(Window {
                    start: window.start,
                    end: mid,
                    restarts: 0,
                });
                return Some(None);
            }
        }
        None
    }
}

/// Rounds up to Graph's 100 ns grid: for times on the grid, `t >= x` exactly when
/// `t >= ceil(x)`, so the window selects the same records.
fn ceil_to_tick(instant: OffsetDateTime) -> OffsetDateTime {
    let truncated = crate::timestamp::truncate_to_ticks(instant);
    if truncated == instant {
        instant
    } else {
        truncated + time::Duration::nanoseconds(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bounds_round_up_to_ticks() {
        let on_grid = datetime!(2024-01-01 00:00:00.1234567 UTC);
        assert_eq!(ceil_to_tick(on_grid), on_grid);
        assert_eq!(
            ceil_to_tick(datetime!(2024-01-01 00:00:00.12345671 UTC)),
            datetime!(2024-01-01 00:00:00.1234568 UTC)
        );
        assert_eq!(
            ceil_to_tick(datetime!(2024-01-01 00:00:00.99999999 UTC)),
            datetime!(2024-01-01 00:00:01 UTC)
        );
    }
}
