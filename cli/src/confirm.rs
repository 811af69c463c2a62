//! Asking before deleting data. Destructive commands (`migrate
//! down|reset|fresh`, `cleanup`, `workflow delete --hard`) say what they will
//! delete and ask on a terminal; without one they need `--yes`, and refuse
//! before opening anything, so a script that forgot it changes nothing.

use flowstate_store::{Result, StoreError};
use std::io::{BufRead, IsTerminal, Write};

/// Checked before anything is opened: without `--yes` there must be a
/// terminal to ask on, else the command is refused as bad usage.
pub fn preflight(what: &str, yes: bool) -> Result<()> {
    if yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(StoreError::InvalidInput(format!(
        "`{what}` deletes data and there is no terminal to ask on; pass --yes to confirm (nothing was changed)"
    )))
}

/// Shows `plan` and asks to go on, unless `yes`. Anything but `y` or `yes`
/// is [`StoreError::NotConfirmed`].
pub fn ask(plan: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    preflight("this command", false)?;
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{plan}\nProceed? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| StoreError::InvalidInput(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(StoreError::NotConfirmed),
    }
}
