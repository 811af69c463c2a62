//! Where diagnostics go: the log writer, which redacts every line, and the
//! last-resort treatment of error messages and closed pipes.

use crate::{CmdResult, Failure};
use flowstate_store::redact::redact;
use flowstate_store::text::escape_controls;
use std::io::{IsTerminal, Write};
use tracing_subscriber::fmt::MakeWriter;

/// How `serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event; coloured only on a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A message as it may be printed: passwords redacted, control characters
/// escaped (a name from a hostile file cannot repaint the terminal).
pub fn printable(message: &str) -> String {
    escape_controls(&redact(message))
}

/// Writes to stdout. A failed write must not panic (as `println!` does): a
/// closed reader ends the command quietly, any other failure (a full disk)
/// ends it with exit 1 after saying why on stderr.
pub fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            write_err(format_args!("error: cannot write the output: {e}"), true);
            std::process::exit(1);
        }
    }
}

/// Writes to stderr, ignoring a failure: there is nowhere left to report it,
/// and the work must go on.
pub fn write_err(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| {
        if newline {
            err.write_all(b"\n")
        } else {
            Ok(())
        }
    });
}

/// Lets a closed stdout end the process the way it ends other Unix tools
/// (`flowstate execution list | head -1`), instead of a panic in `println!`.
/// Not for `run` and `serve`, which must finish the work they started.
pub fn die_quietly_on_closed_pipe() {
    // SAFETY: setting a signal disposition to its default has no
    // preconditions; no other thread exists yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Installs the log subscriber: `RUST_LOG` or the command's default level
/// (info for `serve`, else warn), text or JSON, colour only when stderr is a
/// terminal and `NO_COLOR` is unset. Every line passes through [`redact`], so
/// no log level prints a password, whatever a driver puts in its events.
pub fn init(serve_format: Option<LogFormat>) -> CmdResult {
    let default = if serve_format.is_some() {
        "info"
    } else {
        "warn"
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| {
        Failure::input(format!(
            "RUST_LOG '{}' is not a log filter: {e}",
            flowstate_store::text::shown(&filter)
        ))
    })?;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr)
        .with_target(false);
    let installed = match serve_format.unwrap_or(LogFormat::Text) {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    installed.map_err(|e| Failure::runtime(format!("cannot set up logging: {e}")))
}

/// Hands the log subscriber one buffer per event; the buffer is redacted and
/// written to stderr in one piece when the event is done.
struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer(Vec::with_capacity(256))
    }
}

/// The bytes of one log event.
struct EventBuffer(Vec<u8>);

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = redact(&String::from_utf8_lossy(&self.0));
        // A closed stderr must not take the engine down.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}
