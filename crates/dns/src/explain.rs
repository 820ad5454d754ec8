//! What DNS answers one client for one name, asked of the real answer path: `ecsdns explain`
//! and `GET /v1/explain` show the records a client gets, not a re-derivation that could drift
//! from them.
//!
//! The query is answered as over TCP (no size limit: every record the answer holds) from the
//! client's address, so same-AZ answers apply as they do to that client. Its DNS counters go
//! to a throwaway [`DnsMetrics`]; the lookup does count once in the service's query rate
//! (that counter lives in the table).

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::{AnswerTable, Answerer, AzPreference, DnsError, DnsMetrics, Transport};

/// One answer as a client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The name asked, fully qualified.
    pub name: String,
    /// The type asked (`A`, `SRV`...).
    pub qtype: String,
    /// The response code (`NOERROR`, `NXDOMAIN`, `REFUSED`...).
    pub rcode: String,
    /// The answer section, one record per line in presentation form.
    pub answers: Vec<String>,
    /// The addresses the answer hands out (A/AAAA records, and the SRV targets' addresses in the
    /// additional section), for matching them to tasks.
    pub addresses: Vec<IpAddr>,
    /// SRV targets (task names, no trailing dot, lower case).
    pub targets: Vec<String>,
    /// The client's AZ, when its address lies in a mapped subnet.
    pub client_az: Option<String>,
    /// The service's same-AZ preference (`off`, `first`, `only:N`).
    pub az_preference: String,
    /// For a group name (AZ, revision, subset), what it selects, from its TXT: `az=us-east-1a`,
    /// `revision=2`, `label.version=v2`.
    pub group: Option<String>,
}

impl AnswerTable {
    /// Answers `name`/`qtype` as the real answer path does for a client at `from` (no size
    /// limit). `service` (`service.cluster`) picks the same-AZ preference shown.
    pub fn explain(
        self: &Arc<Self>,
        name: &str,
        qtype: &str,
        from: Option<IpAddr>,
        service: Option<&str>,
    ) -> Result<Explanation, DnsError> {
        let bad_name = |reason: String| DnsError::InvalidName {
            name: name.to_string(),
            reason,
        };
        let mut qname = Name::from_utf8(name).map_err(|e| bad_name(e.to_string()))?;
        qname.set_fqdn(true);
        let rtype: RecordType = qtype
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| DnsError::Config(format!("{qtype:?} is not a DNS record type")))?;
        let answerer = Answerer::new(Arc::clone(self), Arc::new(DnsMetrics::default()));
        let ask = |rtype: RecordType| -> Result<Message, DnsError> {
            let mut query = Message::new(1, MessageType::Query, OpCode::Query);
            query.add_query(Query::query(qname.clone(), rtype));
            let wire = query
                .to_vec()
                .map_err(|e| DnsError::Config(format!("cannot encode the query: {e}")))?;
            let mut out = Vec::new();
            answerer.respond_from(&wire, Transport::Tcp, 0, from, &mut out);
            Message::from_vec(&out)
                .map_err(|e| DnsError::Config(format!("cannot read our own answer: {e}")))
        };
        let reply = ask(rtype)?;
        // A group name's TXT says what it selects (`az=…`, `revision=…`, `label.K=V`).
        let group = ask(RecordType::TXT)?
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::TXT(t) => t
                    .txt_data
                    .first()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .filter(|s| {
                        s.starts_with("az=")
                            || s.starts_with("revision=")
                            || s.starts_with("label.")
                    }),
                _ => None,
            });
        let mut addresses = Vec::new();
        let mut targets = Vec::new();
        for record in reply.answers.iter().chain(&reply.additionals) {
            match &record.data {
                RData::A(a) => addresses.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => addresses.push(IpAddr::V6(a.0)),
                RData::SRV(s) => targets.push(
                    s.target
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                ),
                _ => {}
            }
        }
        addresses.dedup();
        let az = &self.zone.az;
        let client_az = from
            .and_then(|ip| az.client_subnet(ip))
            .map(|(_, name)| name.clone());
        let preference = match service.map(|s| az.preference(s)) {
            _ if az.subnets.is_empty() => "off".to_string(),
            None | Some(AzPreference::Off) => "off".to_string(),
            Some(AzPreference::First) => "first".to_string(),
            Some(AzPreference::Only { min }) => format!("only:{min}"),
        };
        Ok(Explanation {
            name: qname.to_ascii(),
            qtype: rtype.to_string(),
            rcode: mnemonic(u16::from(reply.metadata.response_code)),
            answers: reply.answers.iter().map(ToString::to_string).collect(),
            addresses,
            targets,
            client_az,
            az_preference: preference,
            group,
        })
    }
}

/// The rcode as dig prints it.
fn mnemonic(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        9 => "NOTAUTH".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::ZoneConfig;
    use crate::test_tasks::running;

    #[test]
    fn explains_with_the_records_the_answer_path_gives() {
        let table = Arc::new(AnswerTable::new(ZoneConfig::new("ecs.internal.").unwrap()).unwrap());
        let tasks = [
            running("arn:t/c/a1".into(), "web", Ipv4Addr::new(10, 0, 0, 1), 1),
            running("arn:t/c/a2".into(), "web", Ipv4Addr::new(10, 0, 0, 2), 1),
        ];
        let registry = registry::Registry::new(registry::RegistryConfig::default());
        registry.apply_batch(tasks.iter().cloned().map(model::Update::Upsert));
        crate::follow::sync_once(&registry, &table, 0);
        let e = table
            .explain("web.c.ecs.internal", "a", None, Some("web.c"))
            .unwrap();
        assert_eq!(e.rcode, "NOERROR");
        assert_eq!(e.qtype, "A");
        let mut got = e.addresses.clone();
        got.sort();
        assert_eq!(
            got,
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert!(
            e.answers[0].contains("web.c.ecs.internal."),
            "{:?}",
            e.answers
        );
        let srv = table
            .explain("web.c.ecs.internal.", "SRV", None, None)
            .unwrap();
        assert_eq!(srv.targets.len(), 2, "{srv:?}");
        assert!(srv.targets.contains(&"a1.web.c.ecs.internal".to_string()));
        assert_eq!(srv.addresses.len(), 2, "the targets' addresses: {srv:?}");
        let none = table
            .explain("nope.c.ecs.internal", "A", None, None)
            .unwrap();
        assert_eq!(none.rcode, "NXDOMAIN");
        assert!(
            table
                .explain("web.c.ecs.internal", "BOGUS", None, None)
                .is_err()
        );
    }
}
