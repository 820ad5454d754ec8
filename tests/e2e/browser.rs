//! The dashboard in headless Chromium (driven over WebDriver): the demo's services render, and a
//! churn arrives live over the SSE stream. The screenshot is checked for actual content.

use std::time::Duration;

use serde_json::Value;
use testkit::webdriver::Browser;
use testkit::{Process, eventually};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn dashboard_renders_the_demo_and_follows_churn() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--seed",
        "4",
        "--churn-interval",
        "700ms",
    ]);
    let api = demo.api.expect("the demo serves the API");
    let browser = Browser::start();
    browser.goto(&format!("http://{api}/"));

    let rows = || {
        browser.eval(
            "return [...document.querySelectorAll('#services tr')].map(r => r.dataset.service)",
        )
    };
    eventually(WAIT, "the demo's four services in the page", || {
        (rows() == serde_json::json!(["demo/api", "demo/etl", "demo/fleet", "demo/web"]))
            .then_some(())
    });
    eventually(WAIT, "the live stream connected", || {
        (browser.eval("return document.getElementById('status').textContent") == "live")
            .then_some(())
    });
    let index = |b: &Browser| -> u64 {
        b.eval("return document.getElementById('index').textContent")
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let first = index(&browser);
    // A churn step shows up without a reload: a line in the change log and a newer index.
    let line = eventually(WAIT, "a churn in the change log", || {
        let log = browser
            .eval("return [...document.querySelectorAll('#log li')].map(li => li.textContent)");
        let first_line = log.as_array()?.first()?.as_str()?.to_string();
        (index(&browser) > first).then_some(first_line)
    });
    assert!(line.contains("demo/"), "{line}");

    // Selecting a service lists its endpoints with their states.
    browser.eval("document.querySelector('tr[data-service=\"demo/web\"]').click(); return 1");
    let states = eventually(WAIT, "web's endpoints", || {
        let v: Value = browser.eval(
            "return [...document.querySelectorAll('#endpoints tr')].map(r => r.children[1].textContent)",
        );
        let states: Vec<String> = v
            .as_array()?
            .iter()
            .filter_map(|s| Some(s.as_str()?.to_string()))
            .collect();
        (!states.is_empty()).then_some(states)
    });
    assert!(
        states
            .iter()
            .all(|s| ["passing", "unhealthy", "starting", "draining"].contains(&s.as_str())),
        "{states:?}"
    );

    // The screenshot shows a rendered page, not a blank or error screen.
    let png = browser.screenshot();
    let path = crate::fixture::temp_dir("dashboard").join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(&png));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert!(
        info.width >= 1000 && info.height >= 600,
        "{}x{}",
        info.width,
        info.height
    );
    let step = info.color_type.samples();
    let colours: std::collections::BTreeSet<&[u8]> = pixels[..info.buffer_size()]
        .chunks(step)
        .map(|p| &p[..3])
        .collect();
    // Text in several colours, the dark header, table rules: hundreds of distinct colours.
    assert!(
        colours.len() > 50,
        "only {} colours in {}",
        colours.len(),
        path.display()
    );
    let background = [0xf8u8, 0xf9, 0xfb];
    let content = pixels[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3] != background && p[..3] != [0xff, 0xff, 0xff])
        .count();
    let total = (info.width * info.height) as usize;
    assert!(
        content * 20 > total,
        "under 5% of the page drawn: {}",
        path.display()
    );
}
