//! End-to-end tests: each starts the real `wharf` binary on a free loopback port with a
//! temporary data directory and talks HTTP to it.

mod harness;
