//! Integration tests over real HTTP: one binary, one module per area.

mod cli;
mod faults;
mod helpers;
mod identity;
mod listing;
mod paging;
mod perf;
mod streams;
mod throttle;
mod token;
