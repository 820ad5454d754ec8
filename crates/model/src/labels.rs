//! Task metadata labels: key/value pairs an operator attaches to tasks (docker labels under
//! [`META_PREFIX`] in the task definition, or `labels` in the endpoints file) and ecsdns
//! publishes with each task: in the API, as Prometheus SD labels, in the task's TXT and in
//! `watch`. Shared per task definition, so 100,000 tasks of one definition hold one copy.

use serde::{Deserialize, Serialize};

/// The docker label prefix whose labels are published: `ecsdns.meta.version=v2` becomes the
/// label `version=v2`.
pub const META_PREFIX: &str = "ecsdns.meta.";

/// Longest label value: it must fit one TXT string with its `label.KEY=` prefix.
pub const MAX_VALUE: usize = 200;

/// Why a label cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The key is empty, too long, or holds characters outside `[A-Za-z0-9_.-]`.
    #[error("label key {0:?}: use 1-40 letters, digits, '_', '.' or '-'")]
    Key(String),
    /// The value is longer than [`MAX_VALUE`] bytes.
    #[error("label {key:?}: value of {len} bytes is longer than {MAX_VALUE}")]
    Value {
        /// The key.
        key: String,
        /// The value's length.
        len: usize,
    },
}

/// A task's labels, sorted by key, each key once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Labels(Box<[(String, String)]>);

impl Labels {
    /// Validated labels from pairs (a later duplicate key wins).
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, LabelError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            let key_ok = !k.is_empty()
                && k.len() <= 40
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !key_ok {
                return Err(LabelError::Key(k.to_string()));
            }
            if v.len() > MAX_VALUE {
                return Err(LabelError::Value {
                    key: k.to_string(),
                    len: v.len(),
                });
            }
            out.retain(|(existing, _)| existing != k);
            out.push((k.to_string(), v.to_string()));
        }
        out.sort();
        Ok(Self(out.into()))
    }

    /// The published labels among a container's docker labels: those under [`META_PREFIX`],
    /// with the prefix taken off.
    pub fn from_docker<'a>(
        docker: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, LabelError> {
        Self::new(
            docker
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(META_PREFIX)?, v))),
        )
    }

    /// The labels, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// One label's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_labels_under_the_prefix_are_published() {
        let l = Labels::from_docker([
            ("ecsdns.meta.version", "v2"),
            ("ecsdns.check", "tcp:http"),
            ("ecsdns.meta.team", "payments"),
            ("com.example.other", "x"),
        ])
        .unwrap();
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [("team", "payments"), ("version", "v2")]
        );
        assert_eq!(l.get("version"), Some("v2"));
        assert!(Labels::from_docker([("ecsdns.meta.", "x")]).is_err());
        assert!(Labels::new([("bad key", "x")]).is_err());
        assert!(Labels::new([("k", "x".repeat(201))]).is_err());
        assert!(
            Labels::new(Vec::<(String, String)>::new())
                .unwrap()
                .is_empty()
        );
    }
}
