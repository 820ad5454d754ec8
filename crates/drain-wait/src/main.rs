//! `ecsdns-drain-wait`: the wrapper on its own, small enough to copy into application images.

fn main() {
    let code = match drain_wait::Options::parse(std::env::args_os().skip(1)) {
        Ok(options) => drain_wait::run(options),
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
