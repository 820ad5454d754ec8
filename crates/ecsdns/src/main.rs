//! `ecsdns`: service discovery and authoritative DNS for Amazon ECS.

/// mimalloc instead of glibc malloc: the registry writer and its readers free each other's
/// snapshots, and glibc's per-arena locks made that the writer's bottleneck (about 1.5x to 2x
/// fewer updates per second in `ecsdns-bench registry`), at the same resident size.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    ecsdns::cli::main()
}
