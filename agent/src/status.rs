//! Builds the agent's status report (the admin API's `GET /status`, what `bgw-agent status`
//! prints); the report's types are in [`crate::admin::types`].

use bgw_scheduler::bandwidth::{BandwidthSchedule, Interval};
use bgw_scheduler::maintenance::MaintenanceStartTime;
use chrono::{DateTime, SecondsFormat, Utc};

pub use crate::admin::types::{
    BandwidthReport, CloudStatus, HypervisorReport, MaintenanceReport, ScheduleInterval,
    StatusReport, SyncReport,
};
use std::sync::Arc;
use std::time::Instant;

use crate::clock::CloudTime;
use crate::cloud_link::CloudLink;
use crate::config_channel::ConfigChannel;
use crate::hypervisor_board::HypervisorBoard;
use crate::outbox::Outbox;
use crate::state::Store;
use crate::sync_board::SyncBoard;

/// What the status report is read from.
#[derive(Clone)]
pub struct StatusSources {
    /// The agent's identity and a pending activation key.
    pub store: Store,
    pub link: Arc<CloudLink>,
    pub config: Arc<ConfigChannel>,
    pub hypervisor: Arc<HypervisorBoard>,
    pub sync: Arc<SyncBoard>,
    pub outbox: Arc<Outbox>,
    pub time: CloudTime,
    pub timezone: crate::gateway_zone::GatewayZone,
    pub started: Instant,
    pub updates: Arc<crate::updater::Updater>,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The scheduler's view of the schedule the cloud sent. An invalid one (the cloud validates,
/// so this means a bug) counts as unlimited rather than blocking uploads forever.
pub fn bandwidth_schedule(config: &bgw_protocol::config::GatewayConfig) -> BandwidthSchedule {
    let intervals = config
        .bandwidth_schedule
        .iter()
        .map(|i| Interval {
            days_of_week: i.days_of_week.clone(),
            start_hour: i.start_hour_of_day,
            start_minute: i.start_minute_of_hour,
            end_hour: i.end_hour_of_day,
            end_minute: i.end_minute_of_hour,
            average_upload_rate_limit_bps: i.average_upload_rate_limit_bits_per_sec,
        })
        .collect();
    BandwidthSchedule::new(intervals).unwrap_or_else(|e| {
        tracing::error!(error = %e, "invalid bandwidth schedule from the cloud; uploads unlimited");
        BandwidthSchedule::unlimited()
    })
}

pub fn maintenance_start(
    config: &bgw_protocol::config::GatewayConfig,
) -> Option<MaintenanceStartTime> {
    let m = config.maintenance_start_time.as_ref()?;
    MaintenanceStartTime::from_parts(
        m.day_of_week.map(i64::from),
        m.day_of_month.map(i64::from),
        Some(m.hour_of_day.into()),
        Some(m.minute_of_hour.into()),
    )
    .ok()
}

impl StatusReport {
    /// Builds the report at `now` (the cloud-corrected time).
    pub fn collect(src: &StatusSources, endpoint: &str, region: &str, now: DateTime<Utc>) -> Self {
        let activated = src.link.activated();
        let config = src.config.current();
        let schedule = bandwidth_schedule(&config);
        let tz = src.timezone.get();
        let next = schedule.next_change_after(now, tz);
        let hypervisor = src.hypervisor.current();
        let sync = src.sync.current();
        let pending = src.store.pending_activation().ok().flatten();
        Self {
            version: crate::version().to_string(),
            agent_id: src
                .store
                .value::<crate::state::Identity>("identity")
                .ok()
                .flatten()
                .map(|i| i.agent_id),
            activated: activated.is_some(),
            gateway_arn: activated.as_ref().map(|a| a.gateway_arn.clone()),
            pending_activation_key: pending
                .filter(|p| p.expires_at > now)
                .map(|p| p.activation_key),
            last_heartbeat: src.link.last_heartbeat().map(rfc3339),
            timezone: tz.name().to_string(),
            uptime_seconds: src.started.elapsed().as_secs(),
            config_version: config.version,
            cloud: CloudStatus {
                endpoint: endpoint.to_string(),
                region: region.to_string(),
                last_error: src.link.last_error(),
                clock_offset_ms: src.time.offset_ms(),
                queued_results: src.outbox.len(),
            },
            hypervisor: HypervisorReport {
                arn: config.hypervisor.as_ref().map(|h| h.hypervisor_arn.clone()),
                host: config.hypervisor.as_ref().map(|h| h.host.clone()),
                state: hypervisor.state,
                message: hypervisor.message,
                property_mappings: config
                    .hypervisor
                    .as_ref()
                    .map_or(0, |h| h.property_mappings.len()),
                thumbprint: None,
            },
            sync: SyncReport {
                last_status: sync.last_status,
                last_success: sync.last_success.map(rfc3339),
                last_message: sync.last_message,
                vms: sync.vms,
                esxi_hosts: sync.esxi_hosts,
            },
            bandwidth: BandwidthReport {
                current_limit_bps: schedule.limit_at(now, tz),
                next_change_at: next.map(|(at, _)| rfc3339(at)),
                next_limit_bps: next.and_then(|(_, limit)| limit),
                intervals: schedule.intervals().len(),
                schedule: schedule
                    .intervals()
                    .iter()
                    .map(|i| ScheduleInterval {
                        days_of_week: i.days_of_week.clone(),
                        start: format!("{:02}:{:02}", i.start_hour, i.start_minute),
                        end: format!("{:02}:{:02}", i.end_hour, i.end_minute),
                        limit_bps: i.average_upload_rate_limit_bps,
                    })
                    .collect(),
            },
            maintenance: MaintenanceReport {
                next_window_start: maintenance_start(&config)
                    .map(|m| rfc3339(m.next_window_start(now, tz))),
            },
            update: src.updates.report(&config, tz, now),
        }
    }
}
