//! Query parameters shared by the list endpoints: filters, pagination, blocking queries. Parsed by
//! hand so every malformed value gets a JSON 400 that names the parameter.

use std::time::Duration;

use crate::ApiError;

/// The parameters any list endpoint understands (each uses the ones that apply to it).
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub(crate) cluster: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) az: Option<String>,
    pub(crate) port: Option<String>,
    pub(crate) passing: bool,
    pub(crate) limit: Option<usize>,
    pub(crate) after: Option<String>,
    pub(crate) index: Option<u64>,
    pub(crate) wait: Option<Duration>,
}

impl Params {
    /// Parses decoded query pairs. Unknown parameters are an error: a typo in a filter must not
    /// silently return everything.
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut p = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "cluster" => p.cluster = Some(value.to_ascii_lowercase()),
                "service" => p.service = Some(value.to_ascii_lowercase()),
                "az" => p.az = Some(value.clone()),
                "port" => p.port = Some(value.clone()),
                "passing" => {
                    p.passing = match value.as_str() {
                        "" | "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("passing", value, "true or false")),
                    }
                }
                "limit" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| bad("limit", value, "a positive integer"))?;
                    if n == 0 {
                        return Err(bad("limit", value, "a positive integer"));
                    }
                    p.limit = Some(n);
                }
                "after" => p.after = Some(value.clone()),
                "index" => {
                    p.index = Some(
                        value
                            .parse()
                            .map_err(|_| bad("index", value, "a registry generation"))?,
                    );
                }
                "wait" => {
                    p.wait = Some(
                        parse_duration(value)
                            .ok_or_else(|| bad("wait", value, "a duration like 30s or 5m"))?,
                    );
                }
                // The bearer token may come as a parameter (RFC 6750 §2.3); auth reads it.
                "access_token" => {}
                other => {
                    return Err(ApiError::BadRequest(format!("unknown parameter {other:?}")));
                }
            }
        }
        Ok(p)
    }
}

fn bad(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::BadRequest(format!("{name}={value:?}: expected {expected}"))
}

/// Parses `30s`, `5m`, `1h`, `250ms`, or bare seconds; `None` when malformed or too large.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// One page of `items` (sorted by `key`): those after the `after` cursor, at most `limit`.
/// Returns the page and the cursor of the next page when more remain. Never truncates silently:
/// without `limit` everything is returned.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    after: Option<&str>,
    limit: Option<usize>,
) -> (Vec<T>, Option<String>) {
    let mut page: Vec<T> = match after {
        Some(cursor) => items
            .into_iter()
            .filter(|i| key(i).as_str() > cursor)
            .collect(),
        None => items,
    };
    let next = match limit {
        Some(limit) if page.len() > limit => {
            page.truncate(limit);
            page.last().map(&key)
        }
        _ => None,
    };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_rejects() {
        let p = Params::parse(&pairs(&[
            ("passing", ""),
            ("limit", "5"),
            ("wait", "2m"),
            ("index", "9"),
            ("cluster", "Prod"),
        ]))
        .unwrap();
        assert!(p.passing);
        assert_eq!(p.limit, Some(5));
        assert_eq!(p.wait, Some(Duration::from_secs(120)));
        assert_eq!(p.index, Some(9));
        assert_eq!(p.cluster.as_deref(), Some("prod"));
        for bad in [
            ("limit", "0"),
            ("limit", "x"),
            ("wait", "soon"),
            ("index", "-1"),
            ("colour", "red"),
        ] {
            let e = Params::parse(&pairs(&[bad])).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{bad:?}");
        }
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<u32> = (0..10).collect();
        let key = |i: &u32| format!("{i:02}");
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = paginate(items.clone(), key, after.as_deref(), Some(3));
            seen.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert_eq!(paginate(items.clone(), key, None, None).0.len(), 10);
    }
}
