//! End-to-end tests: each starts the real `wharf` binary on a free loopback port with a
//! temporary data directory and talks HTTP to it.

mod harness;
mod copymove;
mod durability;
mod locks;
mod content;
mod propfind;
mod proppatch;
mod xml_safety;
