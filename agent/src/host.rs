//! Facts about the machine the agent runs on, for heartbeats and the resource check.

use bgw_protocol::heartbeat::ResourceSummary;

/// Recommended minimums (the same as AWS Storage Gateway asks for).
const MIN_CPUS: u32 = 4;
const MIN_MEMORY: u64 = 16 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub hostname: String,
    pub ip_addresses: Vec<String>,
    pub mac_addresses: Vec<String>,
    pub resources: ResourceSummary,
}

impl HostFacts {
    /// Reads the facts from the running system (network interfaces, CPUs, memory).
    pub fn gather() -> Self {
        let hostname = sysinfo::System::host_name().unwrap_or_else(|| "localhost".into());
        let networks = sysinfo::Networks::new_with_refreshed_list();
        let mut ip_addresses = Vec::new();
        let mut mac_addresses = Vec::new();
        for (name, data) in &networks {
            if name == "lo" {
                continue;
            }
            let mac = data.mac_address();
            if mac.0 != [0; 6] {
                mac_addresses.push(mac.to_string());
            }
            for net in data.ip_networks() {
                if !net.addr.is_loopback() {
                    ip_addresses.push(net.addr.to_string());
                }
            }
        }
        ip_addresses.sort();
        ip_addresses.dedup();
        mac_addresses.sort();
        mac_addresses.dedup();
        let mut system = sysinfo::System::new();
        system.refresh_memory();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let memory_bytes = system.total_memory();
        Self {
            hostname,
            ip_addresses,
            mac_addresses,
            resources: resource_check(cpus, memory_bytes),
        }
    }
}

/// OK / WARNING counts for vCPU and RAM against the recommended minimums.
pub fn resource_check(cpus: u32, memory_bytes: u64) -> ResourceSummary {
    let mut summary = ResourceSummary {
        cpus,
        memory_bytes,
        ..Default::default()
    };
    for ok in [cpus >= MIN_CPUS, memory_bytes >= MIN_MEMORY] {
        if ok {
            summary.ok += 1;
        } else {
            summary.warning += 1;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_machines_get_warnings() {
        let s = resource_check(2, 4 << 30);
        assert_eq!((s.ok, s.warning, s.fail), (0, 2, 0));
        let s = resource_check(8, 32 << 30);
        assert_eq!((s.ok, s.warning), (2, 0));
    }
}
