//! End-to-end tests: each starts the real `wharf` binary on a free loopback port with a
//! temporary data directory and talks HTTP to it.

mod auth;
mod base_path;
mod browser;
mod client_times;
mod clients_common;
mod clients_davfs2;
mod clients_finder;
mod clients_gvfs_kio;
mod clients_rclone_cyberduck_winscp;
mod clients_windows;
mod content;
mod copymove;
mod durability;
mod ftp;
mod harness;
mod host_across;
mod host_boundary;
mod host_common;
mod host_dav;
mod host_escape;
mod host_ftp;
mod host_rights;
mod host_setup;
mod https;
mod locks;
mod maintenance;
mod maintenance_backup;
mod operations;
mod propfind;
mod proppatch;
mod proxy;
mod shutdown;
mod small_files;
mod users_cli;
mod xml_safety;
