//! Prometheus metrics of the agent, rendered in the text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters and gauges. All methods are cheap and lock-free except the labelled maps.
#[derive(Default)]
pub struct Metrics {
    heartbeats_ok: AtomicU64,
    heartbeats_failed: AtomicU64,
    last_heartbeat_seconds: AtomicI64,
    syncs: Mutex<BTreeMap<&'static str, u64>>,
    sync_seconds_sum_ms: AtomicU64,
    sync_count: AtomicU64,
    vms: AtomicU64,
    uploaded_bytes: AtomicU64,
    /// -1 = unlimited.
    bandwidth_limit_bps: AtomicI64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    commands: AtomicU64,
    outbox: AtomicU64,
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self::default();
        m.bandwidth_limit_bps.store(-1, Ordering::Relaxed);
        m
    }

    pub fn heartbeat(&self, ok: bool, at_unix: i64) {
        if ok {
            self.heartbeats_ok.fetch_add(1, Ordering::Relaxed);
            self.last_heartbeat_seconds
                .store(at_unix, Ordering::Relaxed);
        } else {
            self.heartbeats_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A finished sync: its final status (`SUCCEEDED`, …) and duration.
    pub fn sync_finished(&self, status: &'static str, duration: std::time::Duration) {
        *self
            .syncs
            .lock()
            .expect("metrics lock")
            .entry(status)
            .or_default() += 1;
        self.sync_count.fetch_add(1, Ordering::Relaxed);
        self.sync_seconds_sum_ms
            .fetch_add(duration.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_vms(&self, count: u64) {
        self.vms.store(count, Ordering::Relaxed);
    }

    pub fn uploaded(&self, bytes: u64) {
        self.uploaded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn set_bandwidth_limit(&self, bps: Option<u64>) {
        self.bandwidth_limit_bps
            .store(bps.map_or(-1, |b| b as i64), Ordering::Relaxed);
    }

    pub fn error(&self, kind: &'static str) {
        *self
            .errors
            .lock()
            .expect("metrics lock")
            .entry(kind)
            .or_default() += 1;
    }

    pub fn command(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_outbox(&self, len: usize) {
        self.outbox.store(len as u64, Ordering::Relaxed);
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "bgw_agent_heartbeats_total",
            "counter",
            "Heartbeats sent to the cloud, by result.",
            &[
                (
                    "{result=\"ok\"}".into(),
                    load(&self.heartbeats_ok).to_string(),
                ),
                (
                    "{result=\"failed\"}".into(),
                    load(&self.heartbeats_failed).to_string(),
                ),
            ],
        );
        family(
            "bgw_agent_last_heartbeat_timestamp_seconds",
            "gauge",
            "Unix time of the last acknowledged heartbeat (0 = none yet).",
            &[(
                String::new(),
                self.last_heartbeat_seconds
                    .load(Ordering::Relaxed)
                    .to_string(),
            )],
        );
        let syncs: Vec<_> = self
            .syncs
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(status, n)| (format!("{{status=\"{status}\"}}"), n.to_string()))
            .collect();
        family(
            "bgw_agent_syncs_total",
            "counter",
            "Finished metadata syncs, by final status.",
            &syncs,
        );
        family(
            "bgw_agent_sync_duration_seconds",
            "summary",
            "Duration of metadata syncs.",
            &[
                (
                    "_sum".into(),
                    format!("{:.3}", load(&self.sync_seconds_sum_ms) as f64 / 1000.0),
                ),
                ("_count".into(), load(&self.sync_count).to_string()),
            ],
        );
        family(
            "bgw_agent_vms",
            "gauge",
            "Virtual machines in the last inventory.",
            &[(String::new(), load(&self.vms).to_string())],
        );
        family(
            "bgw_agent_uploaded_bytes_total",
            "counter",
            "Bytes uploaded to the cloud through the bandwidth throttle.",
            &[(String::new(), load(&self.uploaded_bytes).to_string())],
        );
        family(
            "bgw_agent_bandwidth_limit_bits_per_second",
            "gauge",
            "Upload limit in force (-1 = unlimited).",
            &[(
                String::new(),
                self.bandwidth_limit_bps.load(Ordering::Relaxed).to_string(),
            )],
        );
        let errors: Vec<_> = self
            .errors
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(kind, n)| (format!("{{kind=\"{kind}\"}}"), n.to_string()))
            .collect();
        family(
            "bgw_agent_errors_total",
            "counter",
            "Errors, by kind.",
            &errors,
        );
        family(
            "bgw_agent_commands_total",
            "counter",
            "Commands received from the cloud.",
            &[(String::new(), load(&self.commands).to_string())],
        );
        family(
            "bgw_agent_outbox_items",
            "gauge",
            "Results waiting for the cloud to become reachable.",
            &[(String::new(), load(&self.outbox).to_string())],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.heartbeat(true, 1_700_000_000);
        m.error("cloud_unreachable");
        m.sync_finished("SUCCEEDED", std::time::Duration::from_millis(1500));
        let text = m.render();
        assert!(text.contains("bgw_agent_heartbeats_total{result=\"ok\"} 1"));
        assert!(text.contains("bgw_agent_errors_total{kind=\"cloud_unreachable\"} 1"));
        assert!(text.contains("bgw_agent_sync_duration_seconds_sum 1.500"));
        assert!(text.contains("bgw_agent_bandwidth_limit_bits_per_second -1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.rsplitn(2, ' ');
            let value = parts.next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
