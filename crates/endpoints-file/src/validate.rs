//! `ecsdns validate --endpoints FILE`: every problem of a file, each with its line and column,
//! where a load stops at the first. Checks the same rules as a load ([`crate::parse_file`]):
//! blocks are parsed one by one, so a bad port in one service does not hide a bad name in the
//! next.

use std::path::Path;

use super::{File, Names, Services, add_service, check_unique, service_blocks};

/// One problem found, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// 1-based column (0: the whole line).
    pub column: usize,
    /// What is wrong, naming the key and value and what is allowed.
    pub message: String,
}

/// A TOML error as one line, `line L, column C: message (near "...")`: the toml crate's own
/// text spans several lines (a source excerpt with a caret), which a log line cannot hold.
pub(super) fn one_line(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', "; ");
    let Some(span) = e.span() else {
        return message;
    };
    let (line, column) = position(text, span.start);
    let near: String = text
        .lines()
        .nth(line - 1)
        .unwrap_or("")
        .trim()
        .chars()
        .take(60)
        .collect();
    format!("line {line}, column {column}: {message} (near {near:?})")
}

/// Line and column (1-based) of a byte offset in `text`: for any TOML error's span.
pub fn position(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Where in `block` (starting at file line `first`) a message's first quoted value appears:
/// the line of the offending name, not just its block.
fn locate(block: &str, first: usize, message: &str) -> (usize, usize) {
    let quoted = message
        .split('"')
        .nth(1)
        .filter(|q| !q.is_empty())
        .map(|q| format!("\"{q}\""));
    if let Some(q) = quoted {
        for (i, line) in block.lines().enumerate() {
            if let Some(col) = line.find(&q) {
                return (first + i, col + 1);
            }
        }
    }
    (first, 1)
}

/// The first problem of the file as a load finds it (JSON, or a file the block finder cannot
/// split), located as the whole file.
fn whole(path: &Path, text: &str) -> Vec<Diagnostic> {
    match crate::parse_file(path, text) {
        Ok(_) => Vec::new(),
        Err(e) => vec![Diagnostic {
            line: 0,
            column: 0,
            message: e.to_string(),
        }],
    }
}

/// Every problem of an endpoints file, in file order; empty when a load would accept it.
pub fn validate(path: &Path, text: &str) -> Vec<Diagnostic> {
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        return whole(path, text);
    }
    let blocks = service_blocks(text);
    let mut parsed = Vec::with_capacity(blocks.len());
    let mut out = Vec::new();
    for (line, block) in &blocks {
        match toml::from_str::<File>(block) {
            Ok(file) => parsed.push((*line, *block, file)),
            Err(e) => {
                let (l, c) = e.span().map_or((1, 1), |s| position(block, s.start));
                let message = one_line(&e, block);
                // `one_line` counted lines from the block; the file's lines are what we show.
                let message = message
                    .split_once(": ")
                    .filter(|(head, _)| head.starts_with("line "))
                    .map_or(message.clone(), |(_, rest)| rest.to_string());
                out.push(Diagnostic {
                    line: line + l - 1,
                    column: c,
                    message: format!("invalid TOML: {message}"),
                });
            }
        }
    }
    if !out.is_empty() && toml::from_str::<File>(text).is_ok() {
        // The block finder split inside a multi-line string: judge the file whole.
        return whole(path, text);
    }
    let mut names = Names::default();
    let mut seen = Services::default();
    let mut tasks = Vec::new();
    for (line, block, file) in parsed {
        for svc in file.services {
            let checked = seen
                .add(&svc, Some(line))
                .and_then(|()| add_service(svc, &mut tasks, &mut names));
            if let Err(e) = checked {
                let message = e.to_string();
                let (l, c) = locate(block, line, &message);
                out.push(Diagnostic {
                    line: l,
                    column: c,
                    message,
                });
            }
        }
    }
    if out.is_empty()
        && let Err(e) = check_unique(&tasks)
    {
        out.push(Diagnostic {
            line: 0,
            column: 0,
            message: e.to_string(),
        });
    }
    out.sort_by_key(|d| (d.line, d.column));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_found_with_its_line() {
        let text = "[[service]]\nname = \"Cache_1\"\n[[service.endpoint]]\nid = \"c-1\"\naddresses = [\"10.0.0.1\"]\n\
                    [[service]]\nname = \"web\"\n[[service.endpoint]]\nid = \"w1\"\naddresses = [\"10.0.0.2\"]\nports = { http = 70000 }\n\
                    [[service]]\nname = \"db\"\n[[service.endpoint]]\nid = \"d1\"\naddresses = []\n";
        let found = validate(Path::new("e.toml"), text);
        let lines: Vec<usize> = found.iter().map(|d| d.line).collect();
        assert_eq!(lines, [2, 11, 12], "{found:#?}");
        assert!(
            found[0]
                .message
                .contains("\"Cache_1\" is not served as written")
        );
        assert_eq!(found[0].column, 8);
        assert!(
            found[1]
                .message
                .contains("port http: 70000 is not a port number"),
            "{found:#?}"
        );
        assert!(
            found[2]
                .message
                .contains("endpoint d1 of db.static has no address"),
            "{found:#?}"
        );
        assert!(validate(Path::new("e.toml"), "[[service]]\nname = \"web\"\n").is_empty());
        let json = validate(Path::new("e.json"), "{");
        assert_eq!(json.len(), 1);
    }
}
