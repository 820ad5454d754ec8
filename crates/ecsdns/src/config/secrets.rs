//! Secret values (API tokens, TSIG keys) that must never reach a log line.

/// Values that must never reach a log line: `Debug` prints only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(pub Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

impl Secrets {
    /// Splits a variable's value on commas and newlines, trimming blanks (`old,new` while a
    /// token or key is rotated). `None` when the value holds nothing: an empty secret is a
    /// mistake, not "no authentication".
    pub fn parse(value: &str) -> Option<Self> {
        let items: Vec<String> = value
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        (!items.is_empty()).then_some(Self(items))
    }
}
