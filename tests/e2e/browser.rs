//! The dashboard in headless Chromium (driven over WebDriver): the demo's services render, and a
//! churn arrives live over the SSE stream; with tokens on, the sign-in form, the sources and
//! problems panels, the reload banner, the check columns, sparklines, the latency chart, the
//! filter and deep links. Screenshots are checked for actual content.

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
    // Four services and api's two Service Connect names.
    eventually(WAIT, "the demo's names in the page", || {
        (rows()
            == serde_json::json!([
                "demo/api",
                "demo/api-grpc",
                "demo/backend",
                "demo/etl",
                "demo/fleet",
                "demo/web"
            ]))
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
    let path = crate::fixture::temp_dir("dashboard").join("dashboard.png");
    let shot = Shot::take(&browser, &path);
    let (info, pixels) = (&shot.info, &shot.pixels);
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

/// A decoded screenshot.
struct Shot {
    info: png::OutputInfo,
    pixels: Vec<u8>,
}

impl Shot {
    /// Takes a screenshot and keeps it at `path` (for a person looking into a failure).
    fn take(browser: &Browser, path: &std::path::Path) -> Self {
        let png = browser.screenshot();
        std::fs::write(path, &png).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        pixels.truncate(info.buffer_size());
        Self { info, pixels }
    }

    /// Pixels of colour `rgb` inside the page element `selector` (its bounding box).
    fn count_in(&self, browser: &Browser, selector: &str, rgb: [u8; 3]) -> usize {
        let r = browser.eval(&format!(
            "const r = document.querySelector('{selector}').getBoundingClientRect(); \
             return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio]"
        ));
        let v: Vec<f64> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let scale = v[4];
        let (x0, y0) = ((v[0] * scale) as u32, (v[1] * scale) as u32);
        let x1 = ((v[2] * scale) as u32).min(self.info.width);
        let y1 = ((v[3] * scale) as u32).min(self.info.height);
        let step = self.info.color_type.samples();
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let at = ((y * self.info.width + x) as usize) * step;
                if self.pixels[at..at + 3] == rgb {
                    n += 1;
                }
            }
        }
        n
    }
}

const TOKEN: &str = "dashboard-secret-token";

fn endpoints_file(check_port: u16) -> String {
    format!(
        r#"[[service]]
name = "web"
check = "tcp:http"
check_interval = "300ms"
check_rise = 1
check_fall = 1
[[service.endpoint]]
id = "web-1"
addresses = ["127.0.0.1"]
ports = {{ http = {check_port} }}
az = "us-east-1a"
[[service.endpoint]]
id = "web-2"
addresses = ["127.0.0.2"]
ports = {{ http = 1 }}
az = "us-east-1b"

[[service]]
name = "api"
[[service.endpoint]]
id = "api-1"
addresses = ["10.0.9.1"]
"#
    )
}

#[test]
fn dashboard_shows_operators_sources_problems_checks_and_history() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept (and drop) probe connections for the whole test.
    std::thread::spawn(move || for _conn in listener.incoming() {});
    let dir = crate::fixture::temp_dir("dashboard-ops");
    let file = dir.join("endpoints.toml");
    crate::fixture::write_atomic(&file, endpoints_file(port));
    let p = Process::start_with_env(
        &[
            "serve",
            "--dns-addr",
            "127.0.0.1:0",
            "--endpoints",
            file.to_str().unwrap(),
            "--endpoints-poll",
            "200ms",
            "--history-interval",
            "1s",
        ],
        &[("ECSDNS_API_TOKENS", TOKEN)],
    );
    let api = p.api.unwrap();
    // Some DNS traffic for the query-rate sparkline.
    let query = testkit::query("web.static.ecs.internal.", hickory_proto::rr::RecordType::A);
    for _ in 0..50 {
        testkit::udp(p.dns, &query);
    }
    let browser = Browser::start();
    let text = |selector: &str| -> String {
        browser
            .eval(&format!(
                "const e = document.querySelector('{selector}'); return e ? e.textContent : ''"
            ))
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let visible = |selector: &str| -> bool {
        browser.eval(&format!(
            "const e = document.querySelector('{selector}'); return !!e && !e.hidden && e.offsetParent !== null"
        )) == true
    };

    // Tokens on, none given: the page itself loads and asks for one (no raw 401 JSON).
    browser.goto(&format!("http://{api}/#/static/web"));
    eventually(WAIT, "the sign-in form", || {
        visible("#signin").then_some(())
    });
    assert!(!visible("#main"), "no data before sign-in");
    // A wrong token is refused in the form; the right one opens the dashboard.
    browser.eval(
        "document.getElementById('token-input').value = 'wrong'; \
         document.getElementById('signin').requestSubmit(); return 1",
    );
    eventually(WAIT, "the refusal", || {
        text("#signin-error").contains("refused").then_some(())
    });
    browser.eval(&format!(
        "document.getElementById('token-input').value = '{TOKEN}'; \
         document.getElementById('signin').requestSubmit(); return 1"
    ));
    eventually(WAIT, "the services after sign-in", || {
        (browser.eval("return document.querySelectorAll('#services tr').length") == 2).then_some(())
    });
    // The deep link selected static/web: its endpoints with the check's verdict and reason.
    let row = |id: &str, field: &str| {
        text(&format!(
            "#endpoints tr[data-task=\"{id}\"] td[data-field=\"{field}\"]"
        ))
    };
    eventually(WAIT, "web-2's failing check", || {
        (row("web-2", "check") == "tcp:http failing"
            && row("web-2", "reason") == "connection refused")
            .then_some(())
    });
    assert_eq!(row("web-1", "check"), "tcp:http passing");
    assert_eq!(text("#selected"), "static/web");

    // A token in the URL is taken out of the address bar and kept for the session.
    browser.goto(&format!("http://{api}/?access_token={TOKEN}#/static/api"));
    eventually(WAIT, "the dashboard from a token link", || {
        (text("#selected") == "static/api").then_some(())
    });
    let href = browser.eval("return location.href");
    assert!(!href.as_str().unwrap().contains(TOKEN), "{href}");
    assert_eq!(
        browser.eval("return sessionStorage.getItem('ecsdns-token')"),
        TOKEN
    );

    // Sources: the file, synced, with its endpoint count.
    eventually(WAIT, "the sources panel", || {
        let detail = text("#sources tr[data-source=\"endpoints-file\"]");
        (detail.contains("synced") && detail.contains("3 endpoints")).then_some(())
    });
    // History: the served-count and query-rate sparklines fill in, and the rate shows traffic.
    eventually(WAIT, "sparklines with a query rate", || {
        let points = browser.eval(
            "const p = document.querySelector('tr[data-service=\"static/web\"] svg.qps polyline'); \
             return p ? p.getAttribute('points').split(' ').length : 0",
        );
        let rate: f64 = text("tr[data-service=\"static/web\"] td[data-field=\"qps\"] span")
            .parse()
            .unwrap_or(0.0);
        for _ in 0..20 {
            testkit::udp(p.dns, &query);
        }
        (points.as_u64() >= Some(3) && rate > 0.0).then_some(())
    });
    assert!(
        text("tr[data-service=\"static/web\"] td[data-field=\"served\"]").ends_with('1'),
        "web serves one task (web-2 fails its check)"
    );
    // The update latency chart has bars.
    let bars = browser.eval(
        "return [...document.querySelectorAll('#latency rect.bar')].map(r => +r.dataset.count).reduce((a, b) => a + b, 0)",
    );
    assert!(bars.as_u64() > Some(0), "{bars}");

    // A rejected reload: the banner and the problems panel say so; DNS keeps serving.
    let twice = format!("{}{}", endpoints_file(port), endpoints_file(port));
    crate::fixture::write_atomic(&file, twice);
    eventually(WAIT, "the reload banner", || {
        text("#banner").contains("endpoints-file: ").then_some(())
    });
    assert!(
        text("#banner").contains("is defined twice"),
        "{}",
        text("#banner")
    );
    assert!(
        text("#problems li[data-kind=\"sourceError\"]")
            .contains("keeping the previous 3 endpoints"),
        "{}",
        text("#problems")
    );
    assert!(text("#sources tr[data-source=\"endpoints-file\"]").contains("failing"));

    // The filter narrows the services table, by the address of a task of a service this page
    // has not opened (web: since the token link, only static/api was selected).
    browser.eval(
        "const f = document.getElementById('filter'); f.value = '127.0.0.2'; \
         f.dispatchEvent(new Event('input')); return 1",
    );
    let shown = || {
        browser.eval(
            "return [...document.querySelectorAll('#services tr')].map(r => r.dataset.service)",
        )
    };
    eventually(WAIT, "the services filtered by address", || {
        (shown() == serde_json::json!(["static/web"])).then_some(())
    });
    browser.eval(
        "const f = document.getElementById('filter'); f.value = ''; \
         f.dispatchEvent(new Event('input')); return 1",
    );

    // The screenshot shows the panels drawn: chart bars, the banner, sparkline strokes.
    let shot = Shot::take(&browser, &dir.join("dashboard-ops.png"));
    let bar_blue = [0x2e, 0x90, 0xfa];
    assert!(
        shot.count_in(&browser, "#latency", bar_blue) > 50,
        "latency bars drawn"
    );
    assert!(
        shot.count_in(&browser, "#banner", [0xfe, 0xf3, 0xf2]) > 1000,
        "the banner drawn"
    );
    assert!(
        shot.count_in(&browser, "#services", bar_blue) > 5,
        "query-rate sparklines drawn"
    );
}
