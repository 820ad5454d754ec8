//! An in-process ecsdns on port 0 over a static endpoints file, shared by the DNS rule tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use ecsdns::app::App;
use ecsdns::config::Settings;

pub struct Server {
    pub dns: SocketAddr,
    pub app: App,
    pub rt: tokio::runtime::Runtime,
}

/// A fresh temporary directory under the target dir (cleaned by the next run).
pub fn temp_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .unwrap()
        .join("e2e-tmp")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the real binary (`ecsdns serve`, DNS on a free loopback port) over the endpoints file
/// at `path`, with `extra` flags.
pub fn serve_endpoints(path: &std::path::Path, extra: &[&str]) -> testkit::Process {
    let path = path.to_str().unwrap();
    let mut args = vec!["serve", "--dns-addr", "127.0.0.1:0", "--endpoints", path];
    args.extend_from_slice(extra);
    testkit::Process::start(&args)
}

/// Runs `ecsdns serve` over an endpoints file that must be refused at start; its exit code and
/// stderr.
pub fn serve_refused(path: &std::path::Path) -> (Option<i32>, String) {
    let (code, _, err) = testkit::run_ecsdns(&[
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--http-addr",
        "off",
        "--endpoints",
        path.to_str().unwrap(),
    ]);
    (code, err)
}

/// Starts ecsdns in-process with `endpoints` as its static file.
pub fn start(name: &str, endpoints: &str, tweak: impl FnOnce(&mut Settings)) -> Server {
    let dir = temp_dir(name);
    let file = dir.join("endpoints.toml");
    std::fs::write(&file, endpoints).unwrap();
    let mut settings = Settings {
        dns_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        endpoints: Some(file),
        udp_workers: 2,
        ..Settings::default()
    };
    tweak(&mut settings);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(App::start(&settings)).unwrap();
    Server {
        dns: app.dns_addr(),
        app,
        rt,
    }
}

/// The static data the DNS rule tests query: zone `ecs.internal.`, cluster `prod`.
pub fn rules_endpoints() -> String {
    let mut s = String::from(
        r#"
[[service]]
cluster = "prod"
name = "web"
[[service.endpoint]]
id = "web-1"
addresses = ["10.0.0.1"]
ports = { http = 8080, grpc = 9090 }
az = "us-east-1a"
[[service.endpoint]]
id = "web-2"
addresses = ["10.0.0.2"]
ports = { http = 8080, grpc = 9090 }
[[service.endpoint]]
id = "web-3"
addresses = ["10.0.0.3", "fd00::3"]
ports = { http = 8080, grpc = 9090 }

[[service]]
cluster = "prod"
name = "sick"
[[service.endpoint]]
id = "s1"
addresses = ["10.2.0.1"]
health = "UNHEALTHY"
[[service.endpoint]]
id = "s2"
addresses = ["10.2.0.2"]
health = "UNHEALTHY"

[[service]]
cluster = "prod"
name = "mixed"
[[service.endpoint]]
id = "ok"
addresses = ["10.3.0.1"]
health = "HEALTHY"
[[service.endpoint]]
id = "bad"
addresses = ["10.3.0.2"]
health = "UNHEALTHY"

[[service]]
cluster = "prod"
name = "resolver"
[[service.endpoint]]
id = "r1"
addresses = ["10.4.0.1"]
ports = { dns = { port = 53, protocol = "udp" } }

[[service]]
cluster = "prod"
name = "slow"
[[service.endpoint]]
id = "x"
addresses = ["10.5.0.1"]

[[service]]
cluster = "prod"
name = "big"
"#,
    );
    for i in 1..=60 {
        s.push_str(&format!(
            "[[service.endpoint]]\nid = \"big-{i}\"\naddresses = [\"10.1.0.{i}\"]\nports = {{ http = 80 }}\n"
        ));
    }
    s
}

/// The shared server for read-only rule tests.
pub fn rules() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        start("rules", &rules_endpoints(), |s| {
            s.service_ttl.insert("slow.prod".into(), 30);
        })
    })
}

/// A command for `unshare -m` that runs `command` with `dir/resolv.conf` (naming only `server`,
/// port 53) bind-mounted over /etc/resolv.conf, in the private mount namespace only: for clients
/// that read nothing but /etc/resolv.conf. The machine's own file is never touched.
pub fn with_resolv_conf(
    dir: &std::path::Path,
    server: &str,
    command: &str,
) -> std::process::Command {
    let conf = dir.join("resolv.conf");
    std::fs::write(
        &conf,
        format!("nameserver {server}\noptions timeout:2 attempts:2\n"),
    )
    .unwrap();
    let mut c = std::process::Command::new("unshare");
    c.args([
        "-m",
        "sh",
        "-c",
        &format!(
            "mount --bind {} /etc/resolv.conf && exec {command}",
            conf.display()
        ),
    ]);
    c
}

/// Writes a file a running server polls atomically (temporary file, then rename), as an
/// operator's deploy tool should: a plain write truncates first, and a poll that lands in
/// between reads an empty (valid) file.
pub fn write_atomic(path: &std::path::Path, text: impl AsRef<[u8]>) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
