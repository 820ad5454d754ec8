//! Service Connect names: what a task's deployment publishes in its Service Connect namespace,
//! which ecsdns serves as `NAME.C.zone` so clients outside Service Connect (Lambda, EC2,
//! scheduled tasks) reach the same tasks by the same short name.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One name of a Service Connect service (its `discoveryName`, or a client alias's `dnsName`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectName {
    /// The name's first label, lower-cased: served as `LABEL.C.zone`.
    pub label: Arc<str>,
    /// The task port (port mapping name) the name leads to: its SRV port.
    pub port_name: Arc<str>,
    /// The client alias's port (what Service Connect's proxy listens on), when one is given.
    pub client_port: Option<u16>,
}

/// The Service Connect names of the deployment that started a task, shared by its tasks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ServiceConnect {
    /// Each name once (by label; the first wins).
    pub names: Box<[ConnectName]>,
}

impl ServiceConnect {
    /// Names from `(dns name, port name, client port)` triples as ECS describes them (a
    /// `discoveryName` or `dnsName` such as `orders` or `orders.prod.local`): each name's first
    /// label, when it is a DNS label, once. Names that are not labels are returned apart, to
    /// be reported.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = (&'a str, &'a str, Option<u16>)>,
    ) -> (Self, Vec<String>) {
        let mut out: Vec<ConnectName> = Vec::new();
        let mut bad = Vec::new();
        for (dns_name, port_name, client_port) in names {
            let first = dns_name.split('.').next().unwrap_or_default();
            match crate::dns_label(first) {
                Ok(label) if !label.starts_with('_') => {
                    if !out.iter().any(|n| *n.label == *label) {
                        out.push(ConnectName {
                            label: label.into(),
                            port_name: port_name.into(),
                            client_port,
                        });
                    }
                }
                _ => bad.push(dns_name.to_string()),
            }
        }
        (
            Self {
                names: out.into_boxed_slice(),
            },
            bad,
        )
    }

    /// The name with this label.
    pub fn name(&self, label: &str) -> Option<&ConnectName> {
        self.names.iter().find(|n| *n.label == *label)
    }

    /// Whether it publishes no name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_labels_once_and_bad_names_apart() {
        let (sc, bad) = ServiceConnect::from_names([
            ("orders", "http", None),
            ("Orders.prod.local", "http", Some(8080)),
            ("orders-api.prod.local", "grpc", Some(9090)),
            ("bad name", "http", None),
            ("_x", "http", None),
        ]);
        let labels: Vec<&str> = sc.names.iter().map(|n| &*n.label).collect();
        assert_eq!(labels, ["orders", "orders-api"]);
        assert_eq!(sc.name("orders-api").unwrap().client_port, Some(9090));
        assert_eq!(bad, ["bad name", "_x"]);
    }
}
