//! Fuzz target: arbitrary bytes as an SQS message body, through the same decoder and translation
//! the watcher and the demo use. Never a panic: a value or a decode error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    static FIXTURE: std::sync::OnceLock<(ecs::demo::Simulator, ecs::Decoder)> =
        std::sync::OnceLock::new();
    let (sim, decoder) = FIXTURE.get_or_init(|| {
        (
            ecs::demo::Simulator::new(1),
            ecs::Decoder::new(ecs::demo::Simulator::clusters()),
        )
    });
    let _ = decoder.decode(body, sim);
});
