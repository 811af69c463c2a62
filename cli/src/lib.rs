//! What both binaries of this package share: `flowstate migrate` and
//! `flowstate-migrate` run the same migration commands, and every
//! destructive command asks the same way.
//!
//! - [`migrate`]: the migration commands' arguments and their printing.
//! - [`confirm`]: showing what will be deleted and asking, or requiring `--yes`.

pub mod confirm;
pub mod migrate;
