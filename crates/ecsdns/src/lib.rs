//! The ecsdns binary's library half: command line, configuration, wiring. Kept as a library so
//! the end-to-end tests can start the same wiring in-process.

pub mod app;
pub mod args;
mod background;
pub mod cli;
pub mod client;
pub mod config;
mod dns_args;
mod drain;
mod file_watch;
pub mod operator;
pub mod state_file;
mod validate;
pub mod zone;
