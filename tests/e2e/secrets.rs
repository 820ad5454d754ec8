//! Secrets from the environment, as ECS injects Secrets Manager values into a distroless task:
//! `ECSDNS_API_TOKENS` (two tokens during a rotation) and `ECSDNS_TSIG_KEYS`, both enforced on
//! real HTTP and a real kdig transfer, and never written to a log line or stdout.

use std::process::Command;
use std::time::Duration;

use testkit::Process;
use testkit::http::request;

use crate::fixture::temp_dir;
use crate::transfer::{SECRET, endpoints};

const OLD: &str = "old-token-4f1c9a";
const NEW: &str = "new-token-77b2e0";

#[test]
fn api_tokens_and_tsig_keys_from_the_environment() {
    let dir = temp_dir("secrets");
    let file = dir.join("endpoints.toml");
    std::fs::write(&file, endpoints(3)).unwrap();
    let tokens = format!("{OLD}, {NEW}");
    let keys = format!("xfr:hmac-sha256:{SECRET}");
    let mut p = Process::start_with_env(
        &[
            "serve",
            "--dns-addr",
            "127.0.0.1:0",
            "--endpoints",
            file.to_str().unwrap(),
            "--allow-transfer",
            "127.0.0.1/32",
            "--log-format",
            "json",
        ],
        &[
            ("ECSDNS_API_TOKENS", tokens.as_str()),
            ("ECSDNS_TSIG_KEYS", keys.as_str()),
            // Everything ecsdns logs, so a leak would show.
            ("RUST_LOG", "trace,hyper=info,h2=info,reqwest=info"),
        ],
    );
    let api = format!("http://{}/v1/services", p.api.unwrap());
    assert_eq!(request("GET", &api, None, None).status, 401);
    assert_eq!(request("GET", &api, Some("not-a-token"), None).status, 401);
    // Both tokens of a rotation work; a token is trimmed of the blank after the comma.
    for token in [OLD, NEW] {
        let reply = request("GET", &api, Some(token), None);
        assert_eq!(reply.status, 200, "{token}: {}", reply.body);
        assert!(reply.body.contains("\"web\""), "{}", reply.body);
    }

    // The TSIG key from the environment guards and signs transfers.
    let port = p.dns.port().to_string();
    let kdig = |extra: &[&str]| {
        let mut args = vec!["@127.0.0.1", "-p", port.as_str()];
        args.extend_from_slice(extra);
        let out = Command::new("kdig").args(&args).output().expect("kdig");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let unsigned = kdig(&["AXFR", "ecs.internal."]);
    assert!(unsigned.contains("REFUSED"), "{unsigned}");
    let key = format!("hmac-sha256:xfr:{SECRET}");
    let signed = kdig(&["-y", &key, "AXFR", "ecs.internal."]);
    assert!(
        signed.contains("10.0.0.3") && !signed.contains("WARNING"),
        "{signed}"
    );

    std::thread::sleep(Duration::from_millis(200));
    let stdout = p.wait_for_stdout("serving DNS", Duration::from_secs(1));
    p.stop();
    let stderr = p.stderr();
    assert!(
        stderr.contains("\"level\":\"TRACE\"") || stderr.contains("\"level\":\"DEBUG\""),
        "the log was verbose enough to leak: {stderr}"
    );
    for secret in [OLD, NEW, SECRET] {
        assert!(!stderr.contains(secret), "{secret} in the log: {stderr}");
        assert!(!stdout.contains(secret), "{secret} on stdout: {stdout}");
    }
}

#[test]
fn a_secret_set_but_empty_or_malformed_is_refused_at_start() {
    let dir = temp_dir("secrets-refused");
    let file = dir.join("endpoints.toml");
    std::fs::write(&file, endpoints(1)).unwrap();
    let run = |var: &str, value: &str| {
        let out = Command::new(testkit::ecsdns_bin())
            .args([
                "serve",
                "--dns-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--endpoints",
            ])
            .arg(&file)
            .env(var, value)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // An empty value (a secret that failed to resolve) must not mean "no authentication".
    let (code, err) = run("ECSDNS_API_TOKENS", " , ");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("ECSDNS_API_TOKENS is set but holds no value"),
        "{err}"
    );
    let (code, err) = run("ECSDNS_TSIG_KEYS", "");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("ECSDNS_TSIG_KEYS is set but holds no value"),
        "{err}"
    );
    // A malformed key is named by its position, and its secret is not echoed.
    let (code, err) = run(
        "ECSDNS_TSIG_KEYS",
        &format!("xfr:hmac-sha256:{SECRET},other:hmac-md5:c2VjcmV0LXNlY3JldA=="),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("ECSDNS_TSIG_KEYS entry 2"), "{err}");
    assert!(err.contains("hmac-md5 is not offered"), "{err}");
    assert!(
        !err.contains(SECRET) && !err.contains("c2VjcmV0LXNlY3JldA"),
        "{err}"
    );
    // `serve --help` documents both.
    let help = testkit::run_ecsdns(&["serve", "--help"]).1;
    assert!(help.contains("ECSDNS_API_TOKENS") && help.contains("ECSDNS_TSIG_KEYS"));
}
