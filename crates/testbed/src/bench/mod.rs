//! The benchmark scenarios behind `target/release/bench` (see `docs/BENCHMARKS.md`).

pub mod procfs;
pub mod report;
pub mod resources;
pub mod startup;
pub mod throttle;
