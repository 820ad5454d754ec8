//! Naming rules: which ECS names can be served as DNS labels.
//!
//! ECS allows service names of up to 255 characters of letters, digits, `_` and `-`; a DNS label
//! holds at most 63 octets (RFC 1035). Names are case-insensitive in DNS (RFC 4343), so labels are
//! lower-cased here and two ECS names that differ only in case collide (the registry reports that).

use thiserror::Error;

/// Why a name cannot be served as a DNS label. Reported through the registry's problem list
/// instead of being dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("empty name")]
    Empty,
    /// The name is longer than the 63 octets a DNS label can hold.
    #[error("{len} octets is longer than a DNS label (63)")]
    TooLong {
        /// Length of the offending name in octets.
        len: usize,
    },
    /// The name holds a character outside letters, digits, `-` and `_`.
    #[error("character {ch:?} cannot appear in a DNS label here")]
    BadCharacter {
        /// The first offending character.
        ch: char,
    },
}

/// Turns an ECS name (service, group, cluster, endpoint id) into its lower-cased DNS label.
///
/// Accepts letters, digits, `-` and `_` (ECS's own alphabet), 1 to 63 octets.
pub fn dns_label(name: &str) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 63 {
        return Err(NameError::TooLong { len: name.len() });
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(NameError::BadCharacter { ch });
    }
    Ok(name.to_ascii_lowercase())
}

/// The RFC 2782 label of a named port: `_http` for `http`, `_8080` for an unnamed port 8080.
pub fn port_label(port_name: &str) -> Result<String, NameError> {
    let label = dns_label(port_name)?;
    if label.len() + 1 > 63 {
        return Err(NameError::TooLong {
            len: label.len() + 1,
        });
    }
    Ok(format!("_{label}"))
}

/// The naming schema in one place: a service `S` of cluster `C` is `S.C.zone`, each served task
/// `T.S.C.zone` (`T`: its id's label), each named port `_port._proto.S.C.zone`. DNS prepares these
/// names and the API shows them, from these functions, so the two never disagree.
///
/// The task's own label: its id lower-cased, `None` when the id cannot be a label or starts with
/// `_` (which would collide with port names); such a task gets no DNS name and is not served.
pub fn task_label(task_id: &str) -> Option<String> {
    dns_label(task_id).ok().filter(|l| !l.starts_with('_'))
}

/// `S.C.zone` (no trailing dot; `zone` as given).
pub fn service_fqdn(service: &str, cluster: &str, zone: &str) -> String {
    format!("{service}.{cluster}.{}", zone.trim_end_matches('.'))
}

/// `T.S.C.zone` for a task label from [`task_label`].
pub fn task_fqdn(task_label: &str, service: &str, cluster: &str, zone: &str) -> String {
    format!("{task_label}.{}", service_fqdn(service, cluster, zone))
}

/// `N.S.C.zone`: the name of the task holding ordinal `N` in a service with stable ordinals.
/// A bare number is never an ECS task id (32 hex digits or a UUID), so it cannot shadow one.
pub fn ordinal_fqdn(ordinal: u32, service: &str, cluster: &str, zone: &str) -> String {
    format!("{ordinal}.{}", service_fqdn(service, cluster, zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert_eq!(task_label("0A1b"), Some("0a1b".to_string()));
        assert_eq!(task_label("_http"), None);
        assert_eq!(task_label("no/slash"), None);
        assert_eq!(
            service_fqdn("web", "prod", "ecs.internal."),
            "web.prod.ecs.internal"
        );
        assert_eq!(
            task_fqdn("0a1b", "web", "prod", "ecs.internal"),
            "0a1b.web.prod.ecs.internal"
        );
        assert_eq!(
            ordinal_fqdn(3, "db", "prod", "ecs.internal"),
            "3.db.prod.ecs.internal"
        );
    }

    #[test]
    fn labels() {
        assert_eq!(dns_label("Web-1_a"), Ok("web-1_a".to_string()));
        assert_eq!(dns_label(""), Err(NameError::Empty));
        assert_eq!(
            dns_label(&"a".repeat(64)),
            Err(NameError::TooLong { len: 64 })
        );
        assert!(dns_label(&"a".repeat(63)).is_ok());
        assert_eq!(dns_label("a.b"), Err(NameError::BadCharacter { ch: '.' }));
        assert_eq!(dns_label("ü"), Err(NameError::BadCharacter { ch: 'ü' }));
        assert_eq!(port_label("HTTP"), Ok("_http".to_string()));
        assert!(port_label(&"p".repeat(63)).is_err());
    }
}
