//! Stress tests against the real binary: the crash loop and the load test. A test binary of
//! their own, because cargo runs test binaries one after another: their load never competes
//! with the timing-sensitive end-to-end tests, and the two take turns through [`ONE_AT_A_TIME`].
//!
//! Sizes fit the test command; the full-size settings are in the README ("Test it").

#[path = "../e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

mod crash_loop;
mod load;
mod rng;

/// Each stress test wants the whole machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A setting from the environment, or its default.
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
