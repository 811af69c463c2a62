//! Where a task publishes its outputs: the file `$FLOWSTATE_OUTPUT` names,
//! `key=value` lines read after the attempt exits 0.
//!
//! Each attempt's file is named by its attempt id inside one private folder
//! of the engine (mode 0700, created on first use, removed with the engine).
//! The file is not created for the task: most tasks publish nothing, and
//! creating and removing a file per attempt was 7% of the engine's CPU
//! during a drain of `run: "true"` tasks (perf, SQLite, 2026-11-30).

use crate::error::{EngineError, Result};
use std::path::PathBuf;
use std::sync::OnceLock;
use uuid::Uuid;

/// The engine's folder of output files.
#[derive(Default)]
pub(crate) struct Outputs {
    dir: OnceLock<tempfile::TempDir>,
}

impl Outputs {
    /// The path attempt `attempt` may write its outputs to; nothing is
    /// created there.
    pub(crate) fn path(&self, attempt: Uuid) -> Result<PathBuf> {
        let dir = match self.dir.get() {
            Some(dir) => dir,
            None => {
                use std::os::unix::fs::PermissionsExt;
                // Private: another user must not plant or read outputs.
                let made = tempfile::Builder::new()
                    .prefix("flowstate-outputs-")
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir()
                    .map_err(EngineError::io("create the folder for task outputs"))?;
                // Another attempt may have made one meanwhile: keep the first.
                let _ = self.dir.set(made);
                self.dir.get().expect("set above")
            }
        };
        Ok(dir.path().join(attempt.to_string()))
    }
}

/// Reads and removes the output file at `path`: its text, or `None` when
/// the task wrote none. Small local files: read on the calling thread,
/// without a hand-off to the blocking pool.
pub(crate) fn take(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let _ = std::fs::remove_file(path);
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// Removes the output file at `path` if the task wrote one.
pub(crate) fn discard(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
}

/// The `key=value` pairs of an output file, the last value of a key
/// winning, and the lines that are neither pairs nor comments nor blank.
pub(crate) fn parse(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut values: Vec<(String, String)> = Vec::new();
    let mut ignored = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && k.trim().len() <= 255 => {
                let k = k.trim().to_owned();
                values.retain(|(old, _)| old != &k);
                values.push((k, v.to_owned()));
            }
            _ => ignored.push(line.to_owned()),
        }
    }
    (values, ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_read_and_other_lines_set_aside() {
        let text = "# comment\na=1\n\nb = two=2\r\nnot a pair\na=3\n=x\n";
        let (values, ignored) = parse(text);
        let want = [
            ("b".to_string(), " two=2".to_string()),
            ("a".into(), "3".into()),
        ];
        assert_eq!(values, want);
        assert_eq!(ignored, ["not a pair", "=x"]);
    }

    #[test]
    fn a_file_is_created_by_the_task_only_and_taken_once() {
        let outputs = Outputs::default();
        let path = outputs.path(Uuid::now_v7()).unwrap();
        assert!(!path.exists(), "nothing is created for the task");
        assert_eq!(take(&path), None);
        std::fs::write(&path, "k=v\n").unwrap();
        assert_eq!(take(&path).as_deref(), Some("k=v\n"));
        assert!(!path.exists(), "taken files are removed");
        let dir = path.parent().unwrap().to_owned();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the folder is private");
        drop(outputs);
        assert!(!dir.exists(), "the folder goes with the engine");
    }
}
