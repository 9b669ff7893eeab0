//! Keeping the daemon's idle footprint small on glibc.
//!
//! A metadata sync of thousands of VMs allocates tens of megabytes for a few seconds (XML
//! pages, records, upload batches). glibc's allocator gives every thread that allocates its
//! own arena and keeps freed memory in them, so after a sync the process would stay at its
//! peak size. The daemon limits the allocator to two arenas (it runs two worker threads) and
//! hands free memory back to the system after each sync and periodically.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often free memory is handed back while idle.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Limits the allocator's arenas; call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands free heap memory back to the system.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory that is free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls [`release_free`] every [`TRIM_INTERVAL`] until `shutdown`.
pub async fn trim_periodically(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TRIM_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => release_free(),
        }
    }
}
