//! The `ardoise` binary's library: command line, settings, the demo
//! world and the `surge` load generator. `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod config;
pub mod demo;
pub mod surge;
