//! entra-export copies Microsoft Entra ID audit and sign-in logs from Microsoft Graph into Azure
//! Blob Storage, incrementally, with a checkpoint kept in each job's container metadata.
//!
//! It runs as an Azure Functions custom handler (`serve`) or from a shell (`run`, `status`,
//! `config check`). See `docs/ARCHITECTURE.md` for the code map and a walk through one timer tick.

pub mod arm;
pub mod auth;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod functions;
pub mod graph;
pub mod http;
pub mod job;
#[cfg(test)]
mod layers;
pub mod pipeline;
pub mod progress;
pub mod redact;
pub mod service;
pub mod source;
pub mod storage;
pub mod telemetry;
pub mod timestamp;
pub mod url_util;
