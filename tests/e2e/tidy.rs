//! Checks on the codebase itself, so the architecture document and the dependency rules cannot
//! drift from the code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn crates() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Dependencies of a crate: (name -> is a dev-dependency).
fn deps(krate: &str) -> BTreeMap<String, bool> {
    let text =
        std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for (section, dev) in [("dependencies", false), ("dev-dependencies", true)] {
        if let Some(table) = manifest.get(section).and_then(|t| t.as_table()) {
            for name in table.keys() {
                out.insert(name.clone(), dev);
            }
        }
    }
    out
}

#[test]
fn architecture_md_tours_every_crate() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for krate in crates() {
        assert!(
            arch.contains(&format!("`crates/{krate}`")),
            "ARCHITECTURE.md does not describe crates/{krate}"
        );
        let manifest =
            std::fs::read_to_string(root().join("crates").join(&krate).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{krate}\"")),
            "package name of crates/{krate} must equal its directory"
        );
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "crates/{krate} opts into workspace lints"
        );
    }
}

#[test]
fn dependencies_flow_one_way() {
    // crate -> dependencies it must never have (prefix match)
    let forbidden: &[(&str, &[&str])] = &[
        (
            "model",
            &[
                "tokio", "aws-", "hickory-", "dashmap", "axum", "anyhow", "clap", "registry",
                "ecs", "dns",
            ],
        ),
        (
            "registry",
            &[
                "aws-", "hickory-", "axum", "anyhow", "clap", "ecs", "dns", "api",
            ],
        ),
        (
            "ecs",
            &[
                "registry", "dns", "api", "hickory-", "axum", "anyhow", "clap",
            ],
        ),
        (
            "dns",
            &["aws-", "axum", "anyhow", "clap", "ecs", "api", "health"],
        ),
        (
            "health",
            &[
                "aws-", "hickory-", "axum", "anyhow", "clap", "ecs", "dns", "api", "reqwest",
            ],
        ),
        (
            "api",
            &[
                "aws-", "hickory-", "anyhow", "clap", "ecs", "dns", "reqwest",
            ],
        ),
        (
            "ingest",
            &[
                "registry", "ecs", "dns", "api", "health", "aws-", "hickory-", "axum", "anyhow",
                "clap",
            ],
        ),
        ("testkit", &["aws-", "axum"]),
    ];
    for (krate, banned) in forbidden {
        for (dep, dev) in deps(krate) {
            if dev && *krate != "model" {
                continue;
            }
            for b in *banned {
                let hit = if b.ends_with('-') {
                    dep.starts_with(b)
                } else {
                    dep == *b
                };
                assert!(!hit, "crates/{krate} must not depend on {dep}");
            }
        }
    }
    // drain-wait is copied into application images: it stays small
    for (dep, dev) in deps("drain-wait") {
        assert!(
            dev || ["nix", "serde_json"].contains(&dep.as_str()),
            "crates/drain-wait must stay dependency-light: {dep}"
        );
    }
    // the AWS SDK lives in one crate, hickory in one library crate
    for krate in crates() {
        for dep in deps(&krate).keys() {
            if dep.starts_with("aws-") {
                assert_eq!(krate, "ecs", "{dep} outside crates/ecs");
            }
            if dep == "axum" {
                assert_eq!(krate, "api", "the HTTP framework outside crates/api");
            }
            if dep.starts_with("hickory-") {
                // tools that speak DNS to servers may use hickory too; libraries may not
                let allowed = ["dns", "testkit", "ecsdns-bench"];
                assert!(
                    allowed.contains(&krate.as_str()),
                    "{dep} outside crates/dns"
                );
            }
        }
    }
}

#[test]
fn every_module_is_documented_and_nothing_is_ignored() {
    let mut files = Vec::new();
    for krate in crates() {
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
    }
    rust_files(&root().join("tests"), &mut files);
    let ignore = ["#[", "ignore]"].concat();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let shown = f.strip_prefix(root()).unwrap().display().to_string();
        if !shown.ends_with("main.rs") || shown.starts_with("tests") {
            assert!(text.starts_with("//!"), "{shown} has no //! module doc");
        }
        assert!(!text.contains(&ignore), "{shown} ignores a test");
        if shown.starts_with("crates") && !shown.contains("tests") {
            let lines = text.lines().count();
            assert!(lines <= 500, "{shown} has {lines} lines; split it");
        }
    }
}

#[test]
fn readme_names_the_test_command_and_ci_runs_it() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(readme.contains("./test.sh"), "README names ./test.sh");
    assert!(
        readme.contains("cargo run --release -p ecsdns -- demo"),
        "README names the demo"
    );
    assert!(ci.contains("./test.sh"), ".ci/run calls ./test.sh");
}
