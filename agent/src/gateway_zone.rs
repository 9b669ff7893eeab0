//! The gateway's time zone: bandwidth schedules and maintenance windows follow it, heartbeats
//! report it. It starts as `gateway.timezone` and the local console can switch it while the
//! agent runs (`POST /timezone`); the bandwidth follower re-reads the schedule in the new zone.

use std::sync::Arc;

use chrono_tz::Tz;
use tokio::sync::watch;

/// Shared by the tasks that read the zone; cheap to clone.
#[derive(Clone)]
pub struct GatewayZone(Arc<watch::Sender<Tz>>);

impl GatewayZone {
    pub fn new(tz: Tz) -> Self {
        Self(Arc::new(watch::channel(tz).0))
    }

    pub fn get(&self) -> Tz {
        *self.0.borrow()
    }

    /// Switches to `tz` at once; returns the zone it had.
    pub fn set(&self, tz: Tz) -> Tz {
        let previous = self.0.send_replace(tz);
        if previous != tz {
            tracing::info!(timezone = %tz.name(), previous = %previous.name(), "gateway time zone changed");
        }
        previous
    }

    /// Wakes when the zone changes.
    pub fn subscribe(&self) -> watch::Receiver<Tz> {
        self.0.subscribe()
    }
}
