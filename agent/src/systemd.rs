//! systemd integration: `Type=notify` readiness, watchdog pings and stopping notice.
//! Every call is a no-op when the agent does not run under systemd.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

pub fn ready(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(status)]);
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// The watchdog period systemd asked for, if any.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half its period until shutdown. The pings come from the runtime that
/// runs every other task, so a wedged runtime stops them and systemd restarts the agent.
pub async fn run_watchdog(period: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => { let _ = sd_notify::notify(false, &[NotifyState::Watchdog]); }
        }
    }
}
