//! End-to-end tests: each starts the real `wharf` binary on a free loopback port with a
//! temporary data directory and talks HTTP to it.

mod content;
mod copymove;
mod durability;
mod harness;
mod locks;
mod propfind;
mod proppatch;
mod xml_safety;
