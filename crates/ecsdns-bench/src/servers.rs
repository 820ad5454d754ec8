//! Starting the servers under test (ecsdns, Knot, NSD) pinned to CPU 0 on loopback ports, and
//! reading their CPU time and memory from /proc.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::data::{DataSet, ZONE};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// ecsdns (this repository, release build).
    Ecsdns,
    /// Knot DNS (Debian `knot`), one UDP worker.
    Knot,
    /// NSD (Debian `nsd`), one server process, RRL off.
    Nsd,
}

impl Kind {
    /// Display name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Ecsdns => "ecsdns",
            Kind::Knot => "knot",
            Kind::Nsd => "nsd",
        }
    }
}

/// A running server.
pub(crate) struct Server {
    /// Which one.
    pub(crate) kind: Kind,
    /// Its address.
    pub(crate) addr: SocketAddr,
    /// Its DNS over TLS address, when started with a certificate (ecsdns only).
    pub(crate) dot: Option<SocketAddr>,
    child: Child,
}

fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port")
}

/// Installs the Debian packages the harness needs when they are missing (as root, or with sudo).
pub(crate) fn ensure_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = [("knotd", "knot"), ("nsd", "nsd"), ("taskset", "util-linux")]
        .into_iter()
        .filter(|(bin, _)| !Path::new("/usr/sbin").join(bin).exists() && which(bin).is_none())
        .map(|(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {missing:?} with apt-get");
    let sudo = if nix::unistd::Uid::effective().is_root() {
        vec![]
    } else {
        vec!["sudo"]
    };
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let mut all: Vec<&str> = sudo.clone();
        all.extend_from_slice(args);
        let status = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("cannot run {all:?}"))?;
        if !status.success() {
            bail!("{all:?} failed");
        }
        Ok(())
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq"];
    install.extend(missing);
    run(&install)
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.exists())
}

impl Server {
    /// Writes the server's data and config into `dir` and starts it pinned to CPU 0.
    pub(crate) fn start(kind: Kind, data: &DataSet, dir: &Path) -> anyhow::Result<Self> {
        Self::start_with_tls(kind, data, dir, None)
    }

    /// [`Server::start`], ecsdns also serving DNS over TLS with the certificate and key given.
    pub(crate) fn start_with_tls(
        kind: Kind,
        data: &DataSet,
        dir: &Path,
        tls: Option<(&Path, &Path)>,
    ) -> anyhow::Result<Self> {
        let dir = dir.join(kind.name());
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let zone_file = dir.join("ecs.internal.zone");
        let mut dot = None;
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]);
        match kind {
            Kind::Ecsdns => {
                let endpoints = dir.join("endpoints.toml");
                std::fs::write(&endpoints, data.endpoints_toml())?;
                let me = std::env::current_exe()?;
                cmd.arg(me)
                    .args(["__ecsdns", "serve", "--udp-workers", "1", "--zone", ZONE])
                    .args(["--http-addr", "off"]);
                cmd.arg("--dns-addr").arg(addr.to_string());
                cmd.arg("--endpoints").arg(&endpoints);
                if let Some((cert, key)) = tls {
                    let port = free_port()?;
                    dot = Some(SocketAddr::from(([127, 0, 0, 1], port)));
                    cmd.arg("--dot-addr").arg(format!("127.0.0.1:{port}"));
                    cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
                }
                cmd.env("RUST_LOG", "warn");
            }
            Kind::Knot => {
                std::fs::write(&zone_file, data.zone_file())?;
                let conf = dir.join("knot.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n    user: root:root\n    \
                         udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
                         database:\n    storage: {d}\n\
                         log:\n  - target: stderr\n    any: error\n\
                         zone:\n  - domain: {z}\n    file: {f}\n    zonefile-sync: -1\n    journal-content: none\n",
                        d = dir.display(),
                        z = ZONE,
                        f = zone_file.display()
                    ),
                )?;
                cmd.arg("knotd").arg("-c").arg(&conf);
            }
            Kind::Nsd => {
                std::fs::write(&zone_file, data.zone_file())?;
                let conf = dir.join("nsd.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "server:\n    ip-address: 127.0.0.1@{port}\n    server-count: 1\n    username: \"\"\n    \
                         chroot: \"\"\n    zonesdir: \"{d}\"\n    pidfile: \"{d}/nsd.pid\"\n    database: \"\"\n    \
                         xfrdfile: \"{d}/xfrd.state\"\n    zonelistfile: \"{d}/zone.list\"\n    \
                         rrl-ratelimit: 0\n    minimal-responses: yes\n    verbosity: 0\n    tcp-count: 10\n\
                         remote-control:\n    control-enable: no\n\
                         zone:\n    name: {z}\n    zonefile: \"{f}\"\n",
                        d = dir.display(),
                        z = ZONE,
                        f = zone_file.display()
                    ),
                )?;
                cmd.arg("nsd").args(["-d", "-c"]).arg(&conf);
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", kind.name()))?;
        let server = Self {
            kind,
            addr,
            dot,
            child,
        };
        server.wait_ready(&data.sample()[0].0)?;
        Ok(server)
    }

    fn wait_ready(&self, name: &str) -> anyhow::Result<()> {
        let q = crate::data::query(name, hickory_proto::rr::RecordType::A, 7);
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < Duration::from_secs(120) {
            sock.send_to(&q, self.addr)?;
            if let Ok(n) = sock.recv(&mut buf)
                && n > 12
                && u16::from_be_bytes([buf[6], buf[7]]) > 0
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} did not answer within 120 s", self.kind.name())
    }

    /// The PIDs of the server (the pinned process and its descendants: NSD forks).
    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            if let Ok(entries) = std::fs::read_dir("/proc") {
                for e in entries.flatten() {
                    let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                        continue;
                    };
                    if stat_field(pid, 4) == Some(u64::from(parent)) && !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
            i += 1;
        }
        pids
    }

    /// CPU seconds used so far (user + system, all processes of the server).
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let total: u64 = self
            .pids()
            .iter()
            .map(|p| stat_field(*p, 14).unwrap_or(0) + stat_field(*p, 15).unwrap_or(0))
            .sum();
        total as f64 / ticks
    }

    /// Peak resident memory (VmHWM) summed over the server's processes, bytes.
    pub(crate) fn peak_rss(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|p| {
                let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kb * 1024)
            })
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for pid in self.pids().into_iter().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
    }
}

/// Field `n` (1-based, as proc(5) numbers them: 4 ppid, 14 utime, 15 stime) of /proc/PID/stat.
fn stat_field(pid: u32, n: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    // the first field after the command name is field 3 (state)
    after
        .split_whitespace()
        .nth(n.checked_sub(3)?)?
        .parse()
        .ok()
}
