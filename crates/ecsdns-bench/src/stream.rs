//! Stream transports under load: ecsdns over TCP and over DNS over TLS, next to Knot over TCP
//! (Knot 3.2 serves no DoT), on the same records. Each connection pipelines a window of queries
//! (RFC 7766) and refills it with as many queries as answers arrived, in one write, so the
//! client spends little per query. Servers pinned to CPU 0, load on CPU 1, interleaved rounds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::data::DataSet;
use crate::servers::{Kind, Server};

/// What to run.
pub(crate) struct StreamOptions {
    /// Endpoints in the data set.
    pub(crate) endpoints: usize,
    /// Open connections per run.
    pub(crate) connections: usize,
    /// Queries in flight per connection.
    pub(crate) pipeline: usize,
    /// Interleaved rounds.
    pub(crate) rounds: usize,
    /// Seconds per transport per round.
    pub(crate) seconds: f64,
    /// Where the servers' files go.
    pub(crate) out: PathBuf,
}

/// Where a run sends its queries.
#[derive(Clone, Copy)]
enum Target {
    Tcp(std::net::SocketAddr),
    Tls(std::net::SocketAddr),
}

/// Runs the comparison and prints it.
pub(crate) fn run(o: &StreamOptions) -> anyhow::Result<()> {
    crate::servers::ensure_packages()?;
    let data = DataSet::with_endpoints(o.endpoints);
    let dir = o.out.join("stream");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    let (ca, cert, key) = certificate(&dir)?;
    let ecsdns = Server::start_with_tls(Kind::Ecsdns, &data, &dir, Some((&cert, &key)))?;
    let knot = Server::start(Kind::Knot, &data, &dir)?;
    let dot = ecsdns.dot.context("ecsdns started without DoT")?;
    let runs = [
        ("ecsdns TCP", &ecsdns, Target::Tcp(ecsdns.addr)),
        ("ecsdns DoT", &ecsdns, Target::Tls(dot)),
        ("knot TCP", &knot, Target::Tcp(knot.addr)),
    ];
    println!(
        "data: {} endpoints; mix 60% A, 30% SRV, 10% NXDOMAIN; {} connections x {} in flight",
        data.endpoints(),
        o.connections,
        o.pipeline
    );
    crate::load::pin_to(1);
    let queries = Arc::new(data.queries(65_536, true));
    let tls = Arc::new(client_config(&ca)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let drive = |target, duration| {
        rt.block_on(drive(target, &queries, o, &tls, duration))
            .context("load run failed")
    };
    for (_, _, target) in &runs {
        drive(*target, Duration::from_millis(300))?;
    }
    let mut rows: Vec<Vec<(f64, f64)>> = vec![Vec::new(); runs.len()];
    for round in 0..o.rounds {
        for k in 0..runs.len() {
            let i = (k + round) % runs.len();
            let (_, server, target) = runs[i];
            let cpu = server.cpu_seconds();
            let (answers, elapsed) = drive(target, Duration::from_secs_f64(o.seconds))?;
            let cpu = (server.cpu_seconds() - cpu) / elapsed.as_secs_f64();
            rows[i].push((answers as f64 / elapsed.as_secs_f64(), cpu));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let knot_qps = median(rows[2].iter().map(|r| r.0).collect());
    println!(
        "\n{:<11} {:<36} {:>9} {:>6} {:>10} {:>9}",
        "transport", "qps per round", "median", "CPU", "qps/CPU-s", "vs knot"
    );
    for ((name, _, _), row) in runs.iter().zip(&rows) {
        let qps = median(row.iter().map(|r| r.0).collect());
        let cpu = median(row.iter().map(|r| r.1).collect());
        let each: Vec<String> = row.iter().map(|r| format!("{:.0}", r.0)).collect();
        println!(
            "{name:<11} {:<36} {qps:>9.0} {cpu:>6.2} {:>10.0} {:>8.2}x",
            each.join(" "),
            qps / cpu.max(1e-9),
            qps / knot_qps.max(1e-9)
        );
    }
    Ok(())
}

/// A CA and a certificate for `dns.test` it signed (openssl, a Debian base package):
/// (CA, certificate, key). rustls clients refuse a CA certificate as the server's own.
fn certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let f = |name: &str| dir.join(name);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    std::fs::write(f("dot.ext"), "subjectAltName=DNS:dns.test\n")?;
    let steps: [Vec<std::ffi::OsString>; 3] = [
        args(
            &["req", "-x509", "-days", "2", "-subj", "/CN=ecsdns-bench CA"],
            &ec,
        )
        .chain(paths(&[("-keyout", f("ca.key")), ("-out", f("ca.crt"))]))
        .collect(),
        args(&["req", "-subj", "/CN=dns.test"], &ec)
            .chain(paths(&[("-keyout", f("dot.key")), ("-out", f("dot.csr"))]))
            .collect(),
        args(&["x509", "-req", "-days", "2", "-CAcreateserial"], &[])
            .chain(paths(&[
                ("-in", f("dot.csr")),
                ("-CA", f("ca.crt")),
                ("-CAkey", f("ca.key")),
                ("-extfile", f("dot.ext")),
                ("-out", f("dot.crt")),
            ]))
            .collect(),
    ];
    for step in steps {
        let status = std::process::Command::new("openssl")
            .args(&step)
            .stderr(std::process::Stdio::null())
            .status()
            .context("cannot run openssl")?;
        if !status.success() {
            bail!("openssl {step:?} failed");
        }
    }
    Ok((f("ca.crt"), f("dot.crt"), f("dot.key")))
}

fn args<'a>(a: &'a [&str], b: &'a [&str]) -> impl Iterator<Item = std::ffi::OsString> + 'a {
    a.iter().chain(b).map(std::ffi::OsString::from)
}

fn paths(pairs: &[(&str, PathBuf)]) -> impl Iterator<Item = std::ffi::OsString> {
    pairs
        .iter()
        .flat_map(|(flag, path)| [flag.into(), path.into()])
        .collect::<Vec<std::ffi::OsString>>()
        .into_iter()
}

/// A TLS client trusting just the CA in `cert`, offering ALPN `dot`.
fn client_config(cert: &Path) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"dot".to_vec()];
    Ok(config)
}

/// Opens the connections, runs them for `duration`, and returns the answers and the time.
async fn drive(
    target: Target,
    queries: &Arc<Vec<Vec<u8>>>,
    o: &StreamOptions,
    tls: &Arc<rustls::ClientConfig>,
    duration: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..o.connections {
        let queries = Arc::clone(queries);
        let (pipeline, offset) = (o.pipeline, c * 7919);
        let tls = Arc::clone(tls);
        set.spawn(async move {
            match target {
                Target::Tcp(addr) => {
                    let s = tokio::net::TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    pipelined(s, &queries, offset, pipeline, deadline).await
                }
                Target::Tls(addr) => {
                    let s = tokio::net::TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    let name = rustls::pki_types::ServerName::try_from("dns.test")?;
                    let s = tokio_rustls::TlsConnector::from(tls)
                        .connect(name, s)
                        .await?;
                    pipelined(s, &queries, offset, pipeline, deadline).await
                }
            }
        });
    }
    let mut answers = 0;
    while let Some(done) = set.join_next().await {
        answers += done??;
    }
    Ok((answers, start.elapsed()))
}

/// Keeps `pipeline` queries in flight on one connection until `deadline`; the answers read.
async fn pipelined<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    queries: &[Vec<u8>],
    mut next: usize,
    pipeline: usize,
    deadline: Instant,
) -> anyhow::Result<u64> {
    let mut out = Vec::new();
    let mut push = |n: usize, out: &mut Vec<u8>| {
        out.clear();
        for _ in 0..n {
            let q = &queries[next % queries.len()];
            next += 1;
            out.extend_from_slice(&(q.len() as u16).to_be_bytes());
            out.extend_from_slice(q);
        }
    };
    push(pipeline, &mut out);
    s.write_all(&out).await?;
    s.flush().await?;
    let mut buf = vec![0u8; 1 << 18];
    let (mut filled, mut answers) = (0, 0u64);
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = s.read(&mut buf[filled..]).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        filled += n;
        let (mut at, mut done) = (0, 0);
        while filled - at >= 2 {
            let len = usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
            if filled - at < 2 + len {
                break;
            }
            at += 2 + len;
            done += 1;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        answers += done as u64;
        if Instant::now() >= deadline {
            return Ok(answers);
        }
        if done > 0 {
            push(done, &mut out);
            s.write_all(&out).await?;
            s.flush().await?;
        }
    }
}
