//! End-to-end tests: each starts the real `wharf` binary on a free loopback port with a
//! temporary data directory and talks HTTP to it.

mod auth;
mod content;
mod copymove;
mod durability;
mod harness;
mod https;
mod locks;
mod propfind;
mod proppatch;
mod users_cli;
mod xml_safety;
