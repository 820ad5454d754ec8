//! Tests of the endpoints file: parsing, block-wise TOML, reload updates, and never a panic.

mod unit {
    use crate::*;

    /// The whole-document parse, for comparison with the block-wise one.
    fn whole(text: &str) -> Vec<Task> {
        let file: File = toml::from_str(text).unwrap();
        let mut tasks = Vec::new();
        for svc in file.services {
            add_service(svc, &mut tasks, &mut Names::default()).unwrap();
        }
        tasks
    }

    #[test]
    fn block_wise_parse_equals_whole_parse() {
        let text = r#"
# endpoints
[[service]]
cluster = "prod"
name = "web"
[[service.endpoint]]
id = "a"
addresses = ["10.0.0.1"]
ports = { http = 80, dns = { port = 53, protocol = "udp" } }

  [[service]]
name = "db"
[[service.endpoint]]
id = "b"
addresses = ["10.0.0.2"]
az = """
[[service]]
"""
"#;
        let path = Path::new("e.toml");
        assert_eq!(
            service_blocks(text).len(),
            4,
            "a naive split (prelude and three blocks), fooled by the string"
        );
        assert_eq!(parse(path, text).unwrap(), whole(text));
        let plain = text.replace("az = \"\"\"\n[[service]]\n\"\"\"\n", "");
        assert_eq!(service_blocks(&plain).len(), 3);
        assert_eq!(parse(path, &plain).unwrap(), whole(&plain));
        let keyed = format!("bogus = 1\n{plain}");
        let err = parse(path, &keyed).unwrap_err();
        assert!(format!("{err:#}").contains("bogus"), "{err:#}");
        // A top-level key before the first block keeps the block-wise parse.
        let allowed = format!("allow_empty = true\n{plain}");
        let file = parse_file(path, &allowed).unwrap();
        assert!(file.allow_empty);
        assert_eq!(file.tasks, whole(&plain));
        assert!(!parse_file(path, &plain).unwrap().allow_empty);
        // The same service twice: refused, with both lines, never merged.
        let twice = format!("{plain}{}", &plain[plain.find("[[service]]").unwrap()..]);
        let err = parse(path, &twice).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "service \"web\" of cluster \"prod\" is defined twice (lines 3 and 16): put all its \
             endpoints in one [[service]] block"
        );
        // The same endpoint twice within one block: refused.
        let dup = "[[service]]\nname = \"w\"\n[[service.endpoint]]\nid = \"a\"\naddresses = [\"10.0.0.1\"]\n[[service.endpoint]]\nid = \"a\"\naddresses = [\"10.0.0.2\"]\n";
        let err = parse(path, dup).unwrap_err();
        assert!(
            format!("{err:#}").contains("endpoint a appears twice"),
            "{err:#}"
        );
    }
}

/// Bad values get a message that names the key, the value and what is allowed.
mod messages {
    use crate::*;

    #[test]
    fn bad_inputs_name_key_value_and_what_is_allowed() {
        let endpoint = |ports: &str| {
            format!(
                "[[service]]\nname = \"cache\"\n[[service.endpoint]]\nid = \"c-1\"\naddresses = [\"10.0.0.1\"]\nports = {ports}\n"
            )
        };
        let service = |name: &str, id: &str| {
            format!(
                "[[service]]\nname = \"{name}\"\n[[service.endpoint]]\nid = \"{id}\"\naddresses = [\"10.0.0.1\"]\n"
            )
        };
        let cases: [(String, &[&str]); 11] = [
            (
                service("Cache_1", "c-1"),
                &[
                    "service \"Cache_1\" is not served as written",
                    "write \"cache-1\"",
                ],
            ),
            (
                service("cache", "C1"),
                &[
                    "endpoint id \"C1\" is not served as written",
                    "write \"c1\"",
                ],
            ),
            (
                service("cache", "c_1"),
                &[
                    "endpoint id \"c_1\" is not served as written",
                    "write \"c-1\"",
                ],
            ),
            (
                endpoint("{ Redis = 6379 }"),
                &[
                    "port name \"Redis\" is not served as written",
                    "write \"redis\"",
                ],
            ),
            (
                endpoint("{ redis = 70000 }"),
                &["port redis: 70000 is not a port number (1-65535)", "line 6"],
            ),
            (
                endpoint("{ redis = 0 }"),
                &["port redis: 0 is not a port number (1-65535)"],
            ),
            (
                endpoint("{ redis = -1 }"),
                &["port redis: -1 is not a port number (1-65535)"],
            ),
            (
                endpoint("{ dns = { port = 99999, protocol = \"udp\" } }"),
                &["port dns: 99999 is not a port number (1-65535)"],
            ),
            (
                endpoint("{ dns = { port = 53, protocol = \"sctp\" } }"),
                &["port dns: protocol \"sctp\" is not tcp or udp"],
            ),
            (
                endpoint("{ dns = { port = 53, proto = \"udp\" } }"),
                &["port dns: unknown field \"proto\": a port has `port` and `protocol`"],
            ),
            (
                endpoint("{ redis = \"6379\" }"),
                &["port redis: invalid type: string \"6379\", expected a port number (1-65535)"],
            ),
        ];
        for (text, wanted) in cases {
            let err = format!("{:#}", parse(Path::new("e.toml"), &text).unwrap_err());
            for w in wanted {
                assert!(err.contains(w), "{text}\n=> {err}\nlacks {w:?}");
            }
        }
        // A syntax error is one line (a log line), with where and what.
        let err = format!(
            "{:#}",
            parse(Path::new("e.toml"), "[[service]]\nname = \"web\"\nid = \n").unwrap_err()
        );
        assert!(!err.contains('\n'), "one line: {err:?}");
        assert!(err.contains("line 3, column"), "{err}");
        assert!(err.contains("(near \"id =\")"), "{err}");
        // JSON, the same rule.
        let json = r#"{"service":[{"name":"c","endpoint":[{"id":"a","addresses":["10.0.0.1"],"ports":{"redis":70000}}]}]}"#;
        let err = format!("{:#}", parse(Path::new("e.json"), json).unwrap_err());
        assert!(
            err.contains("port redis: 70000 is not a port number (1-65535)"),
            "{err}"
        );
    }
}

/// Fuzz-style property: endpoint files cut, spliced and altered from a valid one, and arbitrary
/// text, parse to tasks or to an error; never a panic.
mod fuzz {
    use proptest::prelude::*;

    use crate::*;

    const VALID: &str = "[[service]]\ncluster = \"prod\"\nname = \"web\"\ncheck = \"http:http/healthz\"\n\
        check_interval = \"500ms\"\n[[service.endpoint]]\nid = \"w1\"\naddresses = [\"10.0.0.1\", \"fd00::1\"]\n\
        ports = { http = 8080, dns = { port = 53, protocol = \"udp\" } }\naz = \"us-east-1a\"\n\
        health = \"HEALTHY\"\n[[service]]\nname = \"api\"\n[[service.endpoint]]\nid = \"a1\"\n\
        addresses = [\"10.0.0.2\"]\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn mutated_files_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..8),
            json in any::<bool>(),
        ) {
            let mut bytes = VALID.as_bytes().to_vec();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.truncate(i),
                    2 => bytes.insert(i, byte),
                    _ => { bytes.remove(i); }
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let path = if json { "e.json" } else { "e.toml" };
            if let Ok(tasks) = parse(Path::new(path), &text) {
                let _ = StaticSource::default().load(tasks);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = parse(Path::new("e.toml"), &text);
            let _ = parse(Path::new("e.json"), &text);
        }
    }
}
