//! The job runner: long work (metadata syncs today; backups, restores and updates next)
//! runs as jobs instead of inline in the task that asked for it.
//!
//! * **Records.** Every job is a [`JobRecord`] in the agent's store (tree `jobs`): id, kind,
//!   state (`Queued → Running → Succeeded | Failed | Cancelled`), progress, result message
//!   and timestamps. Jobs an agent that was killed left `Queued` or `Running` are marked
//!   `Failed` with `interrupted` at the next start, so a later job can clean up after them.
//! * **Concurrency.** Each [`JobKind`] has its own limit ([`JobKind::concurrency`]): one
//!   metadata sync, four backups at once; the others wait `Queued`.
//! * **Cancellation.** Per job ([`JobRunner::cancel`]), and for all at shutdown; a cancelled
//!   job sees [`JobContext::cancel`] and gets [`STOP_GRACE`] to return before it is dropped.
//! * **Shutdown.** The daemon waits for [`JobRunner::wait`] within its grace period.
//!
//! A new kind of job adds a [`JobKind`] variant with its limit and calls
//! [`JobRunner::submit`]:
//!
//! ```no_run
//! # fn example(runner: bgw_agent::jobs::JobRunner) -> bgw_agent::Result<()> {
//! use bgw_agent::jobs::{JobKind, JobOutcome};
//! let handle = runner.submit(JobKind::Backup, "vm-42", |ctx| async move {
//!     ctx.progress(0, Some(100));
//!     (JobOutcome::Succeeded(None), ())
//! })?;
//! println!("queued {}", handle.id);
//! # Ok(()) }
//! ```

mod record;
mod runner;
mod store;

pub use record::{JobId, JobKind, JobOutcome, JobRecord, JobState, Progress};
pub use runner::{JobContext, JobHandle, JobRunner, STOPPED_WITH_AGENT, STOP_GRACE};
pub use store::{JobStore, INTERRUPTED};

#[cfg(test)]
mod tests;
