//! Databases on the throwaway PostgreSQL server of the tests and benchmarks
//! (`tests/postgres.sh`), made with `psql`. Shared by the end-to-end tests and the scale
//! benchmark.
#![allow(dead_code)]

use std::process::Command;

/// Creates the database `name` on the server at `server` (a `postgres://…/DB` URL) and
/// returns its URL; `Err` with psql's message when it can't (one that exists already
/// included: the caller decides whether that will do).
pub fn create_database(server: &str, name: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", server, "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("run psql");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(database_url(server, name))
}

/// The URL of the database `name` on the server at `server`.
pub fn database_url(server: &str, name: &str) -> String {
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    format!("{base}/{name}")
}
