//! Authoritative DNS for the registry: the naming schema, prepared wire-format answers, and the
//! UDP and TCP servers that hand them out.
//!
//! Invariants:
//! - The query path never walks tasks: it lower-cases the name, does one hash lookup, and copies
//!   prepared bytes (patching the ID, the client's question and the rotation). Answers are
//!   prepared when the registry changes ([`follow`]), not when asked.
//! - Each answer and each zone transfer reads one immutable zone version: every name it serves
//!   and the serial of exactly that content, published whole with one atomic swap.
//! - One answer function ([`Answerer::respond`]) serves UDP and TCP, so both transports give the
//!   same answer; only the size limit differs.
//! - Record data is encoded by hickory-proto; this crate only assembles whole messages.
//! - Every name compression pointer in a prepared record points into the question, so records are
//!   position-independent and can be rotated or dropped without re-encoding.
//! - Malformed input is dropped or answered with FORMERR and counted; nothing here panics on it.

mod answer;
#[cfg(test)]
mod answer_tests;
mod azname;
#[cfg(test)]
mod churn_tests;
mod config;
mod doh;
mod encrypted;
mod entry;
mod explain;
pub mod follow;
mod metrics;
pub mod notify;
mod prepare;
mod rrl;
pub mod served;
mod server;
mod stats;
mod steer;
mod table;
#[cfg(test)]
mod test_tasks;
mod tsig;
mod version;
mod wire;
mod xfr;

pub use answer::{Answerer, Outcome, Transport};
pub use config::{
    AzConfig, AzPreference, Cidr, SubsetConfig, TransferConfig, UdpOverflow, ZoneConfig,
};
pub use encrypted::{EncryptedConfig, EncryptedServer};
pub use explain::Explanation;
pub use metrics::{DnsMetrics, LatencySnapshot, MetricsSnapshot};
pub use rrl::RrlConfig;
pub use served::{ServeLog, ServedTask};
pub use server::{DnsServer, ServerConfig, bind_udp_tcp};
pub use stats::QueryCounts;
pub use table::AnswerTable;
pub use tsig::TsigKey;

use thiserror::Error;

/// Errors of the DNS crate: configuration and socket setup. Query handling has no error path;
/// bad queries become DNS rcodes or counted drops.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The zone or a name in the configuration is not a valid domain name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Encoding a record failed (a name or record too long for DNS).
    #[error("cannot encode record for {name}: {reason}")]
    Encode {
        /// Owner name.
        name: String,
        /// Encoder's message.
        reason: String,
    },
    /// A setting is out of range or unreadable.
    #[error("invalid DNS setting: {0}")]
    Config(String),
    /// Binding or configuring a socket failed (the OS error is the source, shown once by
    /// error chains).
    #[error("socket {addr}")]
    Socket {
        /// Address being bound.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A TLS certificate or key file does not load, or the two do not belong together.
    #[error("TLS certificate {file}: {reason}")]
    Certificate {
        /// The file at fault.
        file: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
