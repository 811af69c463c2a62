//! What `--help` says beyond the flags (examples and the exit codes, on
//! every command), and the shell completions and man pages generated from
//! the same definitions.

use crate::{CmdResult, Failure};
use clap::{Command, CommandFactory};
use std::path::PathBuf;

/// The exit codes, the same for every command.
const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    not found (an execution, a workflow, a task, a file, the database),
       or the work failed at run time (an execution FAILED or CANCELLED, the
       database unreachable, a prompt not confirmed)
  2    bad usage, configuration or input; nothing was opened or written
  124  `execution wait` or `submit --wait`: the timeout passed first";

/// Examples by command path.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("flowstate", &["flowstate run examples/hello.yaml", "flowstate execution list --state FAILED --since 24h"]),
    ("flowstate run", &["flowstate run examples/report.yaml --input DAY=mon"]),
    ("flowstate serve", &["flowstate --config prod.yaml serve --log-format json"]),
    ("flowstate console", &["flowstate --config prod.yaml console   # then open http://127.0.0.1:8080/"]),
    ("flowstate submit", &["flowstate submit nightly-report --input DAY=mon", "flowstate submit nightly-report --wait --timeout 1h"]),
    ("flowstate workflow list", &["flowstate workflow list -o ids"]),
    ("flowstate workflow show", &["flowstate workflow show nightly-report --version 2 -o yaml"]),
    ("flowstate workflow history", &["flowstate workflow history nightly-report"]),
    ("flowstate workflow register", &["flowstate workflow register examples/report.yaml"]),
    ("flowstate workflow delete", &["flowstate workflow delete old-job", "flowstate workflow delete old-job --hard --yes"]),
    ("flowstate execution list", &["flowstate execution list --workflow nightly-report --state FAILED --since 7d", "flowstate execution list --state RUNNING -o ids"]),
    ("flowstate execution inspect", &["flowstate execution inspect 01a2292a-44a7-7182-a24a-e102150d8b97 -o yaml"]),
    ("flowstate execution logs", &["flowstate execution logs 01a2292a-44a7-7182-a24a-e102150d8b97 --task build --follow"]),
    ("flowstate execution wait", &["flowstate execution wait 01a2292a-44a7-7182-a24a-e102150d8b97 --timeout 10m && echo ok"]),
    ("flowstate execution retry", &["flowstate execution retry 01a2292a-44a7-7182", "flowstate execution retry 01a2292a-44a7-7182 --from build --queue"]),
    ("flowstate execution cancel", &["flowstate execution list --state RUNNING -o ids | xargs -n1 flowstate execution cancel"]),
    ("flowstate cleanup", &["flowstate cleanup --older-than 30d --dry-run", "flowstate cleanup --yes"]),
    ("flowstate migrate status", &["flowstate migrate status --json"]),
    ("flowstate completions", &["flowstate completions bash > /etc/bash_completion.d/flowstate", "flowstate completions zsh > \"${fpath[1]}/_flowstate\""]),
    ("flowstate man", &["flowstate man --out /usr/local/share/man/man1"]),
];

/// The command line's definition, every command with its examples and the
/// exit codes after its flags.
pub fn command() -> Command {
    decorate(crate::Cli::command(), "")
}

fn decorate(cmd: Command, parent: &str) -> Command {
    let path = match parent {
        "" => cmd.get_name().to_owned(),
        p => format!("{p} {}", cmd.get_name()),
    };
    let mut text = String::new();
    if let Some((_, examples)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
        text.push_str("Examples:\n");
        for e in *examples {
            text.push_str(&format!("  {e}\n"));
        }
        text.push('\n');
    }
    text.push_str(EXIT_CODES);
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut cmd = cmd.after_help(text);
    for name in names {
        let path = path.clone();
        cmd = cmd.mut_subcommand(name, move |sub| decorate(sub, &path));
    }
    cmd
}

/// `flowstate completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> CmdResult {
    let mut cmd = command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "flowstate", &mut out);
    outln!("{}", String::from_utf8_lossy(&out).trim_end());
    Ok(())
}

/// `flowstate man [--out DIR]`: the main page on stdout, or a page per
/// command written into DIR.
pub fn man(out: Option<PathBuf>) -> CmdResult {
    let cmd = command();
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .map_err(|e| Failure::runtime(format!("cannot render the man page: {e}")))?;
        outln!("{}", String::from_utf8_lossy(&page).trim_end());
        return Ok(());
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::runtime(format!("cannot create '{}': {e}", dir.display())))?;
    clap_mangen::generate_to(cmd, &dir).map_err(|e| {
        Failure::runtime(format!(
            "cannot write man pages into '{}': {e}",
            dir.display()
        ))
    })?;
    errln!("man pages written to {}", dir.display());
    Ok(())
}
