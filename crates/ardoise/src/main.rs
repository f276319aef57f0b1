//! `ardoise`: serve, demo, migrate, config, admin.

fn main() -> std::process::ExitCode {
    ardoise::cli::main()
}
