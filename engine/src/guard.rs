//! Tasks die with their engine.
//!
//! Every task runs in a process group of its own, and a process killed with
//! SIGKILL cannot stop its children: without help, each task's `sh -c` and
//! everything it started would live on with parent 1 while recovery records
//! the attempt as failed. So the first task an engine process starts also
//! forks a guard: a tiny process, in a group of its own, ignoring the
//! signals a terminal or a service manager sends, that reads a pipe whose
//! only writer is the engine. The engine tells it which task groups are
//! alive (`+pgid` when a task starts, `-pgid` when it is over). When the
//! engine dies, whatever the signal, the kernel closes the pipe: the guard
//! reads the end of the file, sends SIGKILL to every group still listed, and
//! exits (within its 20 ms nap).
//!
//! The guard is forked from a threaded process, so between `fork` and
//! `_exit` it only calls async-signal-safe functions (`read`, `kill`,
//! `close`, `signal`, `setpgid`, `nanosleep`) and allocates nothing: the groups are kept
//! in a fixed array.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::{Mutex, OnceLock};

/// Task groups one guard tracks at once; more than the engine's 1,000
/// worker limit.
const GROUPS: usize = 4096;

/// The engine's end of the pipe, once the guard is running.
static GUARD: OnceLock<Option<Mutex<File>>> = OnceLock::new();

/// Tells the guard that task group `pgid` is alive.
pub(crate) fn watch(pgid: i32) {
    send(b'+', pgid);
}

/// Tells the guard that task group `pgid` is gone (its leader exited and
/// is about to be reaped).
pub(crate) fn forget(pgid: i32) {
    send(b'-', pgid);
}

fn send(op: u8, pgid: i32) {
    let Some(pipe) = GUARD.get_or_init(start) else {
        return;
    };
    let mut message = [op, 0, 0, 0, 0];
    message[1..].copy_from_slice(&pgid.to_le_bytes());
    // Five bytes, under PIPE_BUF: the write is atomic, and the guard reads
    // all the time, so it never blocks for long.
    let mut pipe = pipe.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = pipe.write_all(&message) {
        tracing::warn!(error = %e, "the task guard is gone; tasks may outlive a crash of this engine");
    }
}

/// Forks the guard; `None` (with a warning) if that fails, in which case
/// tasks only die with the engine when it shuts down cleanly.
fn start() -> Option<Mutex<File>> {
    let mut fds: [RawFd; 2] = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors; O_CLOEXEC keeps
    // the write end out of every task the engine starts.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot create the task guard's pipe");
        return None;
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child runs only async-signal-safe code and never returns.
    match unsafe { libc::fork() } {
        -1 => {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot fork the task guard");
            // SAFETY: both descriptors are ours and used nowhere else.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            None
        }
        0 => unsafe { guard(read_end) },
        pid => {
            // SAFETY: the read end belongs to the guard now.
            unsafe { libc::close(read_end) };
            tracing::debug!(guard = pid, "task guard started");
            reap_later(pid);
            // SAFETY: `write_end` is an open descriptor nobody else owns.
            Some(Mutex::new(unsafe { File::from_raw_fd(write_end) }))
        }
    }
}

/// Waits for the guard in a thread of its own, so it never stays a zombie
/// (it only exits when this process's end of the pipe closes).
fn reap_later(pid: libc::pid_t) {
    let _ = std::thread::Builder::new()
        .name("task-guard-reaper".into())
        .spawn(move || {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        });
}

/// The guard's whole life, in the forked child.
///
/// # Safety
/// Only after `fork` in the child, with `read_end` the pipe's read end.
unsafe fn guard(read_end: RawFd) -> ! {
    // Out of the engine's process group, deaf to the signals that stop the
    // engine gracefully: it must outlive the engine, not die with it.
    libc::setpgid(0, 0);
    // Named for `ps` (the fork would otherwise carry its thread's name).
    libc::prctl(libc::PR_SET_NAME, c"flowstate-guard".as_ptr());
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ] {
        libc::signal(sig, libc::SIG_IGN);
    }
    // Nothing else of the engine's stays open here: not its other pipes
    // (which a parent may wait to see closed), not its database files.
    let fd = keep_only(read_end);
    let mut groups = [0i32; GROUPS];
    // Whole messages are read in bulk, then the guard naps: it wakes at most
    // 50 times a second, not twice per task (waking per message cost the
    // engine 14% of its drain rate on 2 cores).
    let mut buf = [0u8; 5 * 1024];
    let mut have = 0usize;
    let nap = libc::timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    loop {
        let n = libc::read(fd, buf[have..].as_mut_ptr().cast(), buf.len() - have);
        if n < 0 {
            if *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break;
        }
        if n == 0 {
            break;
        }
        have += n as usize;
        let whole = have - have % 5;
        for m in buf[..whole].chunks_exact(5) {
            update(
                &mut groups,
                m[0],
                i32::from_le_bytes([m[1], m[2], m[3], m[4]]),
            );
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
        libc::nanosleep(&nap, std::ptr::null_mut());
    }
    // The engine is gone: so is every task it left running.
    for &pgid in groups.iter().filter(|&&g| g > 0) {
        libc::kill(-pgid, libc::SIGKILL);
    }
    libc::_exit(0)
}

/// After recovery (at start-up or by the lease sweep) ended executions whose
/// tasks were cut off (failed or put back in the queue): sends SIGKILL to the
/// process group of every process on this host that carries one of their
/// ids in `FLOWSTATE_EXECUTION_ID` (tasks and their children inherit it).
/// This is for the case the guard could not cover: the guard killed too, or
/// never started, or the engine died before telling it a task's group.
/// Returns how many groups were signalled. Linux only: it reads `/proc`;
/// processes of other users are not visible and not touched.
pub(crate) fn kill_leftovers(report: &flowstate_store::types::RecoveryReport) -> usize {
    let wanted: std::collections::HashSet<Vec<u8>> = report
        .failed
        .iter()
        .chain(&report.retried)
        .map(|id| format!("FLOWSTATE_EXECUTION_ID={id}").into_bytes())
        .collect();
    if wanted.is_empty() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    // SAFETY: getpgid(0) is this process's own group.
    let own = unsafe { libc::getpgid(0) };
    let mut groups = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|var| wanted.contains(var)) {
            // SAFETY: reads the group of a process; -1 if it is gone.
            let pgid = unsafe { libc::getpgid(pid) };
            if pgid > 1 && pgid != own {
                groups.insert(pgid);
            }
        }
    }
    for &pgid in &groups {
        // SAFETY: a group whose members carry one of the ended executions' ids.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    groups.len()
}

/// Closes every descriptor but `fd`; returns `fd`.
///
/// # Safety
/// Only in the forked guard.
unsafe fn keep_only(fd: RawFd) -> RawFd {
    let close_range = |from: RawFd, to: RawFd| {
        if from > to {
            return;
        }
        if libc::syscall(libc::SYS_close_range, from as u32, to as u32, 0) != 0 {
            for other in from..=to.min(4095) {
                libc::close(other);
            }
        }
    };
    close_range(0, fd - 1);
    close_range(fd + 1, RawFd::MAX);
    fd
}

/// Adds (`+`) or removes (`-`) `pgid` in the fixed table.
fn update(groups: &mut [i32; GROUPS], op: u8, pgid: i32) {
    match op {
        b'+' => {
            if let Some(slot) = groups.iter_mut().find(|g| **g == 0) {
                *slot = pgid;
            }
        }
        b'-' => {
            if let Some(slot) = groups.iter_mut().find(|g| **g == pgid) {
                *slot = 0;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_adds_and_forgets_groups() {
        let mut groups = [0i32; GROUPS];
        update(&mut groups, b'+', 10);
        update(&mut groups, b'+', 11);
        update(&mut groups, b'-', 10);
        update(&mut groups, b'+', 12);
        let mut live: Vec<i32> = groups.iter().copied().filter(|&g| g > 0).collect();
        live.sort();
        assert_eq!(live, [11, 12]);
        update(&mut groups, b'?', 13);
        update(&mut groups, b'-', 99);
        assert_eq!(groups.iter().filter(|&&g| g > 0).count(), 2);
    }
}
