//! Local stand-ins wired together for end-to-end tests, the demo and benchmarks: the Graph
//! simulator, Azurite, and the real `entra-export serve` process, driven the way the Azure
//! Functions host drives it (raw HTTP/1.1 over a socket, chunked JSON bodies, `GET /` polling).

pub mod e2e;
pub mod host;
pub mod proxy;
pub mod stack;
pub mod verify;

pub use host::{HostReply, Serve, admin_payload, timer_payload};
pub use stack::{Stack, StackOptions};
