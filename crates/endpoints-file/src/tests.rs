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
            3,
            "a naive split, fooled by the string"
        );
        assert_eq!(parse(path, text).unwrap(), whole(text));
        let plain = text.replace("az = \"\"\"\n[[service]]\n\"\"\"\n", "");
        assert_eq!(service_blocks(&plain).len(), 2);
        assert_eq!(parse(path, &plain).unwrap(), whole(&plain));
        let keyed = format!("bogus = 1\n{plain}");
        assert_eq!(service_blocks(&keyed).len(), 1, "a prelude keeps one block");
        let err = parse(path, &keyed).unwrap_err();
        assert!(format!("{err:#}").contains("bogus"), "{err:#}");
        let twice = format!("{plain}{}", &plain[plain.find("[[service]]").unwrap()..]);
        let err = parse(path, &twice).unwrap_err();
        assert!(format!("{err:#}").contains("appears twice"), "{err:#}");
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
