//! Fuzz target: arbitrary bytes as a static endpoints file, TOML and JSON. Never a panic: tasks
//! (which then load into a source) or an error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in ["e.toml", "e.json"] {
        if let Ok(tasks) = endpoints_file::parse(Path::new(name), text) {
            let _ = endpoints_file::StaticSource::default().load(tasks);
        }
    }
});
