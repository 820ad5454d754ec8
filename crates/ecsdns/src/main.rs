//! `ecsdns`: service discovery and authoritative DNS for Amazon ECS.

fn main() -> std::process::ExitCode {
    ecsdns::cli::main()
}
