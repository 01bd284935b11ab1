//! One integration test binary (faster to link than one per file).

mod functions;
mod graph;
mod helpers;
mod pipeline;
mod storage;
