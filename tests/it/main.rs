//! One integration test binary (faster to link than one per file).

mod arm;
mod graph;
mod helpers;
mod storage;
