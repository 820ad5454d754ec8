//! Reading a file that others rewrite: when a write has finished, and when it changed.

use std::time::Duration;

/// Reads a file once two reads `settle` apart return the same text (a writer that truncates
/// and rewrites, or copies in pieces, has finished), trying up to ten times.
pub(crate) async fn read_stable(
    path: &std::path::Path,
    settle: Duration,
) -> std::io::Result<String> {
    let mut text = std::fs::read_to_string(path)?;
    for _ in 0..10 {
        tokio::time::sleep(settle).await;
        let again = std::fs::read_to_string(path)?;
        if again == text {
            return Ok(text);
        }
        text = again;
    }
    Err(std::io::Error::other(format!(
        "{} kept changing for {} ms",
        path.display(),
        settle.as_millis() * 10
    )))
}

/// What identifies a version of the endpoints file: inode, length and change time. The
/// change time moves with every write (so it covers the modification time) and with a rename
/// over the file (how editors and config tools write); the inode tells apart a replacement
/// that lands within the clock's granularity at the same length.
pub(crate) fn stamp(path: &std::path::Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.ctime(), meta.ctime_nsec()))
}
