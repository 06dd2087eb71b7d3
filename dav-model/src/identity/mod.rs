//! Identity: users, shares and their rights, and the principals requests run as. Every
//! protocol authenticates through here, so one user and one right mean the same on each.

mod principal;

pub use principal::{home_of, share_path, Mount, Principal, Rights, HOMES, PUBLIC, SHARES};
