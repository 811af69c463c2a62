//! Running one attempt of a task: `sh -c` in its own process group, output
//! captured line by line, a timeout and a stop signal that kill the group.

use chrono::{DateTime, Utc};
use flowstate_store::types::LogStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Longer lines are split: memory stays bounded whatever a task prints.
pub const MAX_LINE: usize = 64 * 1024;

/// How long a process group gets between SIGTERM and SIGKILL (a timeout, a
/// cancel, the end of a shutdown's grace).
const TERM_GRACE: Duration = Duration::from_secs(2);

/// flowstate's own settings, which tasks never inherit: a task that prints
/// its environment would otherwise write the database password into the logs.
pub const PRIVATE_ENV: &[&str] = &[
    "FLOWSTATE_DATABASE_URL",
    "DATABASE_URL",
    "FLOWSTATE_CONFIG",
    "FLOWSTATE_API_TOKEN",
];

/// One captured line.
#[derive(Debug, Clone)]
pub struct Captured {
    /// When it was read.
    pub ts: DateTime<Utc>,
    /// Which stream.
    pub stream: LogStream,
    /// The text, without its line break.
    pub line: String,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The shell command.
    pub command: String,
    /// Environment added to the engine's own.
    pub env: Vec<(String, String)>,
    /// Kill the attempt after this long.
    pub timeout: Option<Duration>,
    /// The folder the command runs in.
    pub workdir: Option<PathBuf>,
}

/// Why attempts must stop, from the mildest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// Keep running.
    No,
    /// The engine is shutting down: no new attempt starts, running ones go
    /// on through the grace period.
    Drain,
    /// The execution was cancelled.
    Cancel,
    /// The engine is shutting down and its grace period is over.
    Shutdown,
}

impl Stop {
    /// Whether a running process must be stopped (not only new ones held back).
    pub fn kills(self) -> bool {
        matches!(self, Stop::Cancel | Stop::Shutdown)
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The shell exited with this code.
    Exited(i32),
    /// The shell was killed by this signal.
    Signaled(i32),
    /// The timeout passed; the group was killed.
    TimedOut,
    /// Stopped early for this reason; the group was killed.
    Stopped(Stop),
    /// The shell could not be started.
    SpawnFailed(String),
    /// The shell exited, but this many of its log lines could not be stored:
    /// the database or its disk was full.
    StorageFull(u64),
}

/// `sh -c` for `spec`, in a process group of its own, without flowstate's
/// private settings in its environment.
fn command(spec: &Spec) -> Command {
    let mut cmd = Command::new("sh");
    for name in PRIVATE_ENV {
        cmd.env_remove(name);
    }
    cmd.arg("-c")
        .arg(&spec.command)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.workdir {
        cmd.current_dir(dir);
    }
    cmd
}

/// Runs `spec`, sending every line to `lines` (which applies back-pressure:
/// a slow database slows the task's output, never grows memory).
pub async fn run(
    spec: Spec,
    lines: mpsc::Sender<Captured>,
    mut stop: watch::Receiver<Stop>,
) -> Outcome {
    // An attempt claimed ahead may have waited for its slot through a cancel.
    let now = *stop.borrow_and_update();
    if now.kills() {
        return Outcome::Stopped(now);
    }
    let mut child = match command(&spec).spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::SpawnFailed(format!("cannot start sh: {e}")),
    };
    let pgid = child.id().map(|p| p as i32);
    if let Some(pgid) = pgid {
        crate::guard::watch(pgid);
    }
    let out = tokio::spawn(pump(child.stdout.take(), LogStream::Stdout, lines.clone()));
    let err = tokio::spawn(pump(child.stderr.take(), LogStream::Stderr, lines));

    let deadline = async {
        match spec.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let stopped = async {
        loop {
            let now = *stop.borrow_and_update();
            if now.kills() {
                return now;
            }
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let (ended, mut status) = tokio::select! {
        status = child.wait() => (None, Some(status)),
        _ = deadline => (Some(Outcome::TimedOut), None),
        why = stopped => (Some(Outcome::Stopped(why)), None),
    };
    if let Some(pgid) = pgid {
        if ended.is_some() {
            kill_group(pgid, libc::SIGTERM);
            match tokio::time::timeout(TERM_GRACE, child.wait()).await {
                Ok(s) => status = Some(s),
                Err(_) => kill_group(pgid, libc::SIGKILL),
            }
        }
        // Whatever the shell left behind in its group would hold the pipes
        // open (and outlive the attempt): it goes too, if there is any.
        kill_group(pgid, libc::SIGKILL);
        crate::guard::forget(pgid);
    }
    let status = match status {
        Some(s) => s,
        None => child.wait().await,
    };
    let outcome = ended.unwrap_or_else(|| match status {
        Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Signaled(sig),
            (None, None) => Outcome::Exited(-1),
        },
        Err(e) => Outcome::SpawnFailed(format!("waiting for the process failed: {e}")),
    });
    let _ = out.await;
    let _ = err.await;
    outcome
}

/// Signals the task's process group, but only while it has a member: once
/// its leader is reaped, a group id with no process left could be taken by
/// someone else's new group, while a group with a member keeps its id.
fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid and signal 0 only checks that the
    // group exists; then it signals the process group we created.
    unsafe {
        if libc::kill(-pgid, 0) == 0 {
            libc::kill(-pgid, signal);
        }
    }
}

async fn pump<R: AsyncRead + Unpin>(
    reader: Option<R>,
    stream: LogStream,
    lines: mpsc::Sender<Captured>,
) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = Captured {
            ts: flowstate_store::now(),
            stream,
            line: String::from_utf8_lossy(&buf).into_owned(),
        };
        if lines.send(line).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_before_the_start_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let spec = Spec {
            command: format!("touch {}", marker.display()),
            env: Vec::new(),
            timeout: None,
            workdir: None,
        };
        let (lines, _rx) = mpsc::channel(8);
        let (_stop_tx, stop) = watch::channel(Stop::Cancel);
        assert_eq!(run(spec, lines, stop).await, Outcome::Stopped(Stop::Cancel));
        assert!(!marker.exists(), "the process was started");
    }
}
