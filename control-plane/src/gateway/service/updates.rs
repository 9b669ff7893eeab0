//! Software updates in the heartbeat: the gateway's report goes into its update history, and
//! the answer offers the newest release it should install. `NextUpdateAvailabilityTime` is the
//! start of the next maintenance window (in UTC) while a release is offered, or now for an
//! urgent release or after `UpdateGatewaySoftwareNow`.

use bgw_protocol::heartbeat::{Heartbeat, UpdateOffer};
use bgw_scheduler::maintenance::MaintenanceStartTime;
use chrono::{DateTime, Utc};

use super::Refusal;
use crate::release::{offer_of, ReleaseShelf};
use crate::store::{GatewayRecord, MaintenanceTime, Store};

/// Records the update part of `hb` and returns the release to offer, if any.
pub fn on_heartbeat(
    shelf: &ReleaseShelf,
    store: &Store,
    gateway_arn: &str,
    hb: &Heartbeat,
    now: DateTime<Utc>,
) -> Result<Option<UpdateOffer>, Refusal> {
    if let Some(attempt) = &hb.update.last_attempt {
        shelf.record_attempt(gateway_arn, attempt)?;
    }
    let offer = shelf.offer(gateway_arn, &hb.agent_version)?;
    let gw = store.get_gateway(gateway_arn)?;
    let next = offer.as_ref().map(|release| {
        if release.urgent || gw.update_requested.is_some() {
            now
        } else {
            next_window_start(&gw, now).unwrap_or(now)
        }
    });
    // Whole seconds: the API shows epoch seconds, and a changing value would rewrite the
    // record at every heartbeat.
    let next = next.and_then(|t| DateTime::<Utc>::from_timestamp(t.timestamp(), 0));
    let done = gw.update_requested.is_some() && offer.is_none();
    if gw.next_update_availability != next || done {
        store.update_gateway(gateway_arn, |gw| {
            gw.next_update_availability = next;
            if done {
                gw.update_requested = None;
            }
            Ok(())
        })?;
    }
    Ok(offer.as_ref().map(offer_of))
}

/// The next window start after `now` in the gateway's time zone (UTC until it reports one).
pub fn next_window_start(gw: &GatewayRecord, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let m: &MaintenanceTime = gw.maintenance_start_time.as_ref()?;
    let start = MaintenanceStartTime::from_parts(
        m.day_of_week.map(i64::from),
        m.day_of_month.map(i64::from),
        Some(i64::from(m.hour_of_day)),
        Some(i64::from(m.minute_of_hour)),
    )
    .ok()?;
    let tz = gw
        .timezone
        .as_deref()
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::UTC);
    Some(start.next_window_start(now, tz))
}
