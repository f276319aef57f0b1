//! The `ardoise` binary's library: command line, settings and the demo
//! world. `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod config;
pub mod demo;
