//! The explain answer: which tasks one DNS answer holds for one client, and why each other
//! task of the service is left out.

use serde::{Deserialize, Serialize};

/// What DNS answers one name and type to one client (from [`crate::Operator::explain`]):
/// the records of the real answer path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsAnswer {
    /// The name asked, fully qualified.
    pub name: String,
    /// The type asked.
    pub qtype: String,
    /// `NOERROR`, `NXDOMAIN`, `REFUSED`...
    pub rcode: String,
    /// The answer section in presentation form.
    pub answers: Vec<String>,
    /// Addresses the answer hands out (A/AAAA, and SRV targets' additional addresses).
    pub addresses: Vec<std::net::IpAddr>,
    /// SRV targets, lower case, no trailing dot.
    pub targets: Vec<String>,
    /// The client's AZ, when its address lies in a mapped subnet.
    pub client_az: Option<String>,
    /// The service's same-AZ preference (`off`, `first`, `only:N`).
    pub az_preference: String,
    /// For a group name, what it selects (`az=…`, `revision=…`, `label.K=V`), from its TXT.
    pub group: Option<String>,
}

/// `GET /v1/explain?name=N[&type=T][&from=IP]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Explain {
    /// The name asked, fully qualified.
    pub name: String,
    /// The type asked.
    #[serde(rename = "type")]
    pub qtype: String,
    /// The client address the answer was computed for (`null`: an address in no mapped subnet).
    pub from: Option<String>,
    /// The client's AZ, when `from` lies in a mapped subnet.
    pub client_az: Option<String>,
    /// The service's same-AZ preference (`off`, `first`, `only:N`).
    pub az_preference: String,
    /// The response code.
    pub rcode: String,
    /// The answer section, as `dig` would print it.
    pub answers: Vec<String>,
    /// The service the name belongs to (`cluster/service`), when it is one of ours.
    pub service: Option<String>,
    /// Whether the service is in fail-open (no task usable: the live ones served anyway).
    pub fail_open: bool,
    /// Every known task of that service (or the one task a task name names).
    pub tasks: Vec<ExplainTask>,
}

/// One task's place in an explained answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExplainTask {
    /// Task id.
    pub task_id: String,
    /// Task ARN.
    pub arn: String,
    /// Whether this answer holds it.
    pub in_answer: bool,
    /// Why it is in the answer, or why it is not (health, check, draining, stopping, AZ, port).
    pub why: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Its AZ.
    pub az: Option<String>,
}
