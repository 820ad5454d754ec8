//! `[tls]`: the DNS over TLS and DNS over HTTPS listeners and their certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::parse_duration;

/// `[tls]` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// DNS over TLS listen address, e.g. `0.0.0.0:853`.
    pub dot_addr: Option<SocketAddr>,
    /// DNS over HTTPS listen address, e.g. `0.0.0.0:443`.
    pub doh_addr: Option<SocketAddr>,
    /// PEM certificate chain.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
    /// How often the two files are checked for a new certificate, e.g. `5s`.
    pub reload_interval: Option<String>,
}

/// The encrypted listeners, resolved.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// DNS over TLS listen address.
    pub dot_addr: Option<SocketAddr>,
    /// DNS over HTTPS listen address.
    pub doh_addr: Option<SocketAddr>,
    /// PEM certificate chain.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
    /// How often the files are checked for a change.
    pub reload_interval: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            dot_addr: None,
            doh_addr: None,
            cert_file: None,
            key_file: None,
            reload_interval: Duration::from_secs(5),
        }
    }
}

impl TlsSettings {
    /// Applies the config file's `[tls]` over these.
    pub fn merge(&mut self, file: TlsFile) -> anyhow::Result<()> {
        self.dot_addr = file.dot_addr.or(self.dot_addr);
        self.doh_addr = file.doh_addr.or(self.doh_addr);
        self.cert_file = file.cert_file.or(self.cert_file.take());
        self.key_file = file.key_file.or(self.key_file.take());
        if let Some(v) = file.reload_interval {
            self.reload_interval = parse_duration(&v)?;
        }
        Ok(())
    }

    /// The listeners to start (`None`: neither is configured), with `timeout` for handshakes
    /// and idle connections and at most `max_connections` DoH connections. A listener without both files is an error, and so are files
    /// without a listener (a certificate set up for nothing is a mistake worth saying).
    pub fn encrypted(
        &self,
        timeout: Duration,
        max_connections: usize,
    ) -> anyhow::Result<Option<dns::EncryptedConfig>> {
        let listening = self.dot_addr.is_some() || self.doh_addr.is_some();
        match (&self.cert_file, &self.key_file, listening) {
            (None, None, false) => Ok(None),
            (Some(cert), Some(key), true) => {
                let mut config = dns::EncryptedConfig::new(cert.clone(), key.clone());
                config.dot_addr = self.dot_addr;
                config.doh_addr = self.doh_addr;
                config.timeout = timeout;
                config.max_connections = max_connections;
                config.reload_interval = self.reload_interval;
                Ok(Some(config))
            }
            (_, _, true) => bail!(
                "DNS over TLS or HTTPS needs a certificate and its key: give both --tls-cert \
                 and --tls-key (or cert_file and key_file under [tls])"
            ),
            (_, _, false) => bail!(
                "a TLS certificate or key is set but no encrypted listener: give --dot-addr \
                 or --doh-addr (or dot_addr / doh_addr under [tls])"
            ),
        }
    }
}
