//! Progress for `run` on a terminal (a bar with records, records/s and ETA) or plain lines when
//! output is not a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::job::JobKind;
use crate::pipeline::Progress;

/// A progress sink for the CLI: a bar on a terminal, else a line every 10 seconds.
pub fn for_terminal(kind: JobKind, no_bar: bool) -> Arc<dyn Progress> {
    if !no_bar && std::io::stderr().is_terminal() {
        Arc::new(Bar::new(kind))
    } else {
        Arc::new(Lines {
            kind,
            started: Instant::now(),
            last: Mutex::new(None),
        })
    }
}

struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(kind: JobKind) -> Bar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} minutes of the range stored, {msg} ({elapsed} elapsed, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(kind.name());
        Bar { bar }
    }
}

impl Progress for Bar {
    fn planned(&self, minutes: u64) {
        self.bar.set_length(minutes);
    }

    fn advanced(&self, minutes_done: u64, records_fetched: u64) {
        self.bar.set_position(minutes_done);
        let secs = self.bar.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!(
            "{records_fetched} records, {:.0} records/s",
            records_fetched as f64 / secs
        ));
    }

    fn finished(&self) {
        self.bar.finish();
    }
}

struct Lines {
    kind: JobKind,
    started: Instant,
    last: Mutex<Option<Instant>>,
}

impl Progress for Lines {
    fn planned(&self, minutes: u64) {
        eprintln!("{}: {minutes} minutes of events to fetch", self.kind);
    }

    fn advanced(&self, minutes_done: u64, records_fetched: u64) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprintln!(
            "{}: {minutes_done} minutes stored, {records_fetched} records, {:.0} records/s",
            self.kind,
            records_fetched as f64 / secs
        );
    }

    fn finished(&self) {
        eprintln!(
            "{}: done in {:.1}s",
            self.kind,
            self.started.elapsed().as_secs_f64()
        );
    }
}
