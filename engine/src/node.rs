//! The node id that names this engine process in leases.

use flowstate_store::StorageConfig;

/// A node id that is the same every time this machine runs an engine on this
/// database, so a restarted engine recovers its own executions at once
/// instead of waiting for their leases to expire: the host name and a short
/// hash of the database's location.
pub fn default_node_id(storage: &StorageConfig) -> String {
    let target = match storage.kind {
        flowstate_store::StorageType::Sqlite => std::fs::canonicalize(&storage.sqlite.path)
            .unwrap_or_else(|_| storage.sqlite.path.clone())
            .display()
            .to_string(),
        _ => storage.display_target(),
    };
    format!("{}-{:08x}", hostname(), fnv1a(target.as_bytes()) as u32)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
