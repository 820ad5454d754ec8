//! Warm restart: the registry's live tasks in a file, written periodically and at shutdown, read
//! back at start so DNS answers from the last known state while the sources resync.
//!
//! Format: one header line `ecsdns-state 1 ZONE LENGTH CHECKSUM` (checksum: FNV-1a 64 of the
//! body, hex), then the body: the tasks as JSON. Written to a temporary file, synced, renamed
//! over the old one, so a crash leaves the old file or the new one, never half of either. A file
//! that is not ours, of another version or zone, cut short or altered is refused with the reason
//! and ignored: the sources rebuild the state as on a cold start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use model::Task;

const MAGIC: &str = "ecsdns-state";
const VERSION: u32 = 1;

/// FNV-1a, 64 bits: stable across versions and platforms (unlike `std`'s hashers), and enough
/// to notice a truncated or edited file (this is no defence against tampering: the file is
/// written and read by the same operator).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `tasks` for `zone` to `path` atomically.
pub fn write(path: &Path, zone: &str, tasks: &[Arc<Task>]) -> anyhow::Result<()> {
    let body = serde_json::to_vec(tasks).context("cannot encode the state")?;
    let header = format!(
        "{MAGIC} {VERSION} {zone} {} {:016x}\n",
        body.len(),
        fnv1a(&body)
    );
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(header.as_bytes())?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().with_context(|| format!("cannot write the state file {}", path.display()))
}

/// Reads the tasks saved for `zone`; `Ok(None)` when there is no file yet.
pub fn read(path: &Path, zone: &str) -> anyhow::Result<Option<Vec<Task>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .filter(|n| *n < 1024)
        .context("not an ecsdns state file (no header line)")?;
    let header = std::str::from_utf8(&bytes[..newline]).context("not an ecsdns state file")?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, file_zone, len, sum] = fields.as_slice() else {
        bail!("not an ecsdns state file (header {header:?})");
    };
    if *magic != MAGIC {
        bail!("not an ecsdns state file (header {header:?})");
    }
    if version.parse::<u32>().ok() != Some(VERSION) {
        bail!("state file version {version}, this ecsdns reads version {VERSION}");
    }
    if *file_zone != zone {
        bail!("state file of zone {file_zone}, this ecsdns serves {zone}");
    }
    let body = &bytes[newline + 1..];
    if len.parse::<usize>().ok() != Some(body.len()) {
        bail!(
            "state file cut short or padded: {} bytes of body, header says {len}",
            body.len()
        );
    }
    if u64::from_str_radix(sum, 16).ok() != Some(fnv1a(body)) {
        bail!("state file corrupt: checksum mismatch");
    }
    let tasks: Vec<Task> = serde_json::from_slice(body).context("state file corrupt")?;
    Ok(Some(tasks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> Arc<Task> {
        Arc::new(Task {
            arn: format!("arn:aws:ecs:r:1:task/c/{id}").into(),
            cluster: "c".into(),
            group: model::TaskGroup::parse("service:web"),
            version: 3,
            last_status: model::TaskStatus::Running,
            desired_status: model::TaskStatus::Running,
            health: model::Health::Healthy,
            health_checked: true,
            addresses: Box::new(["10.0.0.1".parse().unwrap()]),
            ports: Box::new([]),
            az: Some("us-east-1a".into()),
            task_definition: None,
            container_instance: None,
            started_at: None,
            check: Some(Arc::new(model::Check::parse("tcp:80").unwrap())),
            labels: Some(Arc::new(model::Labels::new([("version", "v2")]).unwrap())),
            ordinal: Some(2),
            service_connect: None,
        })
    }

    #[test]
    fn round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("ecsdns-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        assert!(
            read(&path, "ecs.internal.").unwrap().is_none(),
            "no file yet"
        );
        let tasks = vec![task("a"), task("b")];
        write(&path, "ecs.internal.", &tasks).unwrap();
        let back = read(&path, "ecs.internal.").unwrap().unwrap();
        assert_eq!(
            back,
            tasks.iter().map(|t| (**t).clone()).collect::<Vec<_>>()
        );
        assert!(!temp_path(&path).exists());

        let err = read(&path, "other.zone.").unwrap_err().to_string();
        assert!(err.contains("zone"), "{err}");
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let err = format!("{:#}", read(&path, "ecs.internal.").unwrap_err());
        assert!(err.contains("corrupt"), "{err}");
        std::fs::write(&path, &good[..good.len() - 10]).unwrap();
        let err = format!("{:#}", read(&path, "ecs.internal.").unwrap_err());
        assert!(err.contains("cut short"), "{err}");
        std::fs::write(&path, b"{\"some\": \"json\"}").unwrap();
        let err = format!("{:#}", read(&path, "ecs.internal.").unwrap_err());
        assert!(err.contains("not an ecsdns state file"), "{err}");
        let v2 = String::from_utf8(good.clone())
            .unwrap()
            .replacen(" 1 ", " 2 ", 1);
        std::fs::write(&path, v2).unwrap();
        let err = format!("{:#}", read(&path, "ecs.internal.").unwrap_err());
        assert!(err.contains("version 2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
