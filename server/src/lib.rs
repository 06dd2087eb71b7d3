//! The code of the `wharf` binary (src/main.rs), as a library: adapters only — WebDAV over
//! HTTP, the browser pages and FTP — onto the protocol-agnostic `dav-model`. It is a library
//! so that the fuzz targets in `fuzz/` can reach the parsers through [`fuzzing`]; nothing
//! else depends on it, and its API is whatever `main.rs` needs.

pub mod admin;
pub mod config;
pub mod dav;
pub mod edge;
pub mod ftp;
pub mod http_server;
pub mod if_header;
pub mod listener;
pub mod logging;
pub mod maintenance;
pub mod ops;
pub mod proxy;
pub mod serve;
pub mod tls;
pub mod xml;
pub mod zero_copy;

#[doc(hidden)]
pub mod fuzzing;
