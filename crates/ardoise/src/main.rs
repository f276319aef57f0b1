//! `ardoise`: serve, demo, migrate, config, admin.

/// mimalloc rather than the system allocator: a request allocates and
/// frees many small buffers, and glibc's malloc took 8.6 % of the node's
/// CPU at 10× load (perf, the 9:15 stair of `scripts/surge-overload.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ardoise::cli::main()
}
