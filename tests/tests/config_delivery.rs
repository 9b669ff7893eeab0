//! Every configuration change reaches the gateway: rounds of changes made through aws-cli in
//! quick succession and concurrently (bandwidth schedule, maintenance start time, property
//! mappings, hypervisor association and update), while the agent long-polls for commands and
//! heartbeats every 2 s. After each round `bgw-agent status` must show the latest content
//! within a few seconds; a version number that came to stand for newer content than the agent
//! already held under it would leave the agent with the old content for good.

mod agent_support;

use std::time::Duration;

use agent_support::{get_gateway, wait_until, Agent, AgentOptions};
use bgw_tests::aws::{AwsCli, Venv};
use bgw_tests::cloud::{Cloud, CloudOptions};
use serde_json::Value;

/// What the gateway should hold after a round.
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    limit_bps: u64,
    hour: u32,
    minute: u32,
    mappings: usize,
    host: String,
}

/// One change, run as one aws-cli call.
#[derive(Debug, Clone)]
enum Change {
    Bandwidth(u64),
    Maintenance(u32, u32),
    Mappings(usize),
    Host(String),
}

struct Fixture<'a> {
    cloud: &'a Cloud,
    gateway: String,
    hypervisor: String,
}

fn aws(cloud: &Cloud, args: &[&str]) -> Value {
    let out = AwsCli::new(cloud).run(args).unwrap();
    assert!(out.success(), "{}: {}", args[0], out.stderr());
    out.json().unwrap_or(Value::Null)
}

impl Fixture<'_> {
    fn apply(&self, change: &Change) {
        match change {
            Change::Bandwidth(bps) => {
                let intervals = format!(
                    r#"[{{"DaysOfWeek":[0,1,2,3,4,5,6],"StartHourOfDay":0,"StartMinuteOfHour":0,"EndHourOfDay":23,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":{bps}}}]"#
                );
                aws(
                    self.cloud,
                    &[
                        "put-bandwidth-rate-limit-schedule",
                        "--gateway-arn",
                        &self.gateway,
                        "--bandwidth-rate-limit-intervals",
                        &intervals,
                    ],
                );
            }
            Change::Maintenance(hour, minute) => {
                aws(
                    self.cloud,
                    &[
                        "put-maintenance-start-time",
                        "--gateway-arn",
                        &self.gateway,
                        "--hour-of-day",
                        &hour.to_string(),
                        "--minute-of-hour",
                        &minute.to_string(),
                        "--day-of-week",
                        "3",
                    ],
                );
            }
            Change::Mappings(n) => {
                let mappings: Vec<Value> = (0..*n)
                    .map(|i| {
                        serde_json::json!({
                            "VmwareCategory": "env",
                            "VmwareTagName": format!("t{i}"),
                            "AwsTagKey": format!("k{i}"),
                            "AwsTagValue": "v",
                        })
                    })
                    .collect();
                aws(
                    self.cloud,
                    &[
                        "put-hypervisor-property-mappings",
                        "--hypervisor-arn",
                        &self.hypervisor,
                        "--iam-role-arn",
                        "arn:aws:iam::123456789012:role/bgw-sync",
                        "--vmware-to-aws-tag-mappings",
                        &Value::from(mappings).to_string(),
                    ],
                );
            }
            Change::Host(host) => {
                aws(
                    self.cloud,
                    &[
                        "update-hypervisor",
                        "--hypervisor-arn",
                        &self.hypervisor,
                        "--host",
                        host,
                    ],
                );
            }
        }
    }
}

impl Fixture<'_> {
    /// The boto3 call that makes `change`.
    fn boto3(&self, change: &Change) -> String {
        let (gw, hv) = (&self.gateway, &self.hypervisor);
        match change {
            Change::Bandwidth(bps) => format!(
                "c.put_bandwidth_rate_limit_schedule(GatewayArn={gw:?}, BandwidthRateLimitIntervals=[{{\
                 'DaysOfWeek': [0, 1, 2, 3, 4, 5, 6], 'StartHourOfDay': 0, 'StartMinuteOfHour': 0, \
                 'EndHourOfDay': 23, 'EndMinuteOfHour': 59, 'AverageUploadRateLimitInBitsPerSec': {bps}}}])"
            ),
            Change::Maintenance(hour, minute) => format!(
                "c.put_maintenance_start_time(GatewayArn={gw:?}, HourOfDay={hour}, MinuteOfHour={minute}, DayOfWeek=3)"
            ),
            Change::Mappings(n) => format!(
                "c.put_hypervisor_property_mappings(HypervisorArn={hv:?}, \
                 IamRoleArn='arn:aws:iam::123456789012:role/bgw-sync', VmwareToAwsTagMappings=[\
                 {{'VmwareCategory': 'env', 'VmwareTagName': 't%d' % i, 'AwsTagKey': 'k%d' % i, 'AwsTagValue': 'v'}} \
                 for i in range({n})])"
            ),
            Change::Host(host) => {
                format!("c.update_hypervisor(HypervisorArn={hv:?}, Host={host:?})")
            }
        }
    }

    fn apply_in_sequence(&self, changes: &[Change], gap_seconds: f64) {
        let calls: Vec<String> = changes
            .iter()
            .map(|c| format!("{}\ntime.sleep({gap_seconds})", self.boto3(c)))
            .collect();
        let script = format!(
            "import time\nimport boto3\nc = boto3.client('backup-gateway')\n{}\n",
            calls.join("\n")
        );
        let out = bgw_tests::aws::python(Venv::Json, self.cloud, &script).unwrap();
        assert!(out.success(), "changes: {}\n{script}", out.stderr);
    }

    fn apply_concurrently(&self, changes: &[Change]) {
        let calls: Vec<String> = changes
            .iter()
            .map(|c| format!("    lambda: {},", self.boto3(c)))
            .collect();
        let script = format!(
            "import concurrent.futures, threading\nimport boto3\n\
             c = boto3.client('backup-gateway')\n\
             calls = [\n{}\n]\n\
             start = threading.Barrier(len(calls))\n\
             def run(call):\n    start.wait()\n    return call()\n\
             with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:\n\
             \x20   for f in [pool.submit(run, call) for call in calls]:\n\
             \x20       f.result()\n",
            calls.join("\n")
        );
        let out = bgw_tests::aws::python(Venv::Json, self.cloud, &script).unwrap();
        assert!(
            out.success(),
            "concurrent changes: {}\n{script}",
            out.stderr
        );
    }
}

fn held(status: &Value) -> Option<Wanted> {
    let start: chrono::DateTime<chrono::Utc> = status["maintenance"]["next_window_start"]
        .as_str()?
        .parse()
        .ok()?;
    use chrono::Timelike;
    Some(Wanted {
        limit_bps: status["bandwidth"]["current_limit_bps"].as_u64()?,
        hour: start.hour(),
        minute: start.minute(),
        mappings: status["hypervisor"]["property_mappings"].as_u64()? as usize,
        host: status["hypervisor"]["host"].as_str()?.to_string(),
    })
}

#[test]
fn every_change_reaches_the_gateway_in_quick_and_concurrent_rounds() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let agent = Agent::start(
        &cloud,
        AgentOptions {
            heartbeat: "2s".into(),
            ..Default::default()
        },
    );
    let gateway = agent.activate(&cloud);
    let hypervisor = aws(
        &cloud,
        &[
            "import-hypervisor-configuration",
            "--name",
            "vc",
            "--host",
            "vc0.invalid",
        ],
    )["HypervisorArn"]
        .as_str()
        .unwrap()
        .to_string();
    aws(
        &cloud,
        &[
            "associate-gateway-to-server",
            "--gateway-arn",
            &gateway,
            "--server-arn",
            &hypervisor,
        ],
    );
    let fixture = Fixture {
        cloud: &cloud,
        gateway: gateway.clone(),
        hypervisor,
    };
    let mut wanted = Wanted {
        limit_bps: 1_000_000,
        hour: 1,
        minute: 0,
        mappings: 1,
        host: "vc0.invalid".into(),
    };
    for change in [
        Change::Bandwidth(wanted.limit_bps),
        Change::Maintenance(wanted.hour, wanted.minute),
        Change::Mappings(wanted.mappings),
    ] {
        fixture.apply(&change);
    }
    wait_for(&agent, &wanted, "the initial configuration");

    for round in 1..=20u32 {
        // The sequence from the field: mappings, then bandwidth and about a second later the
        // maintenance start time; every other round the hypervisor moves too.
        let mut changes = vec![
            Change::Mappings(1 + (round as usize % 4)),
            Change::Bandwidth(1_000_000 + u64::from(round) * 8_192),
            Change::Maintenance(round % 24, (round * 7) % 60),
        ];
        if round % 2 == 0 {
            changes.push(Change::Host(format!("vc{round}.invalid")));
        }
        for change in &changes {
            match change {
                Change::Bandwidth(b) => wanted.limit_bps = *b,
                Change::Maintenance(h, m) => (wanted.hour, wanted.minute) = (*h, *m),
                Change::Mappings(n) => wanted.mappings = *n,
                Change::Host(h) => wanted.host = h.clone(),
            }
        }
        if round % 3 == 0 {
            // All at once, each from its own thread of one boto3 client.
            fixture.apply_concurrently(&changes);
        } else {
            // One after the other, a fraction of a second apart: a heartbeat (every 2 s) or
            // a configuration pull often falls between two of them.
            let gap = [0.4, 0.5, 0.6][round as usize % 3];
            fixture.apply_in_sequence(&changes, gap);
        }
        let gw = get_gateway(&cloud, &gateway);
        assert_eq!(
            gw["MaintenanceStartTime"]["HourOfDay"], wanted.hour,
            "GetGateway shows the change: {gw}"
        );
        wait_for(&agent, &wanted, &format!("round {round}"));
    }
}

fn wait_for(agent: &Agent, wanted: &Wanted, what: &str) {
    let mut last = None;
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(
            Duration::from_secs(8),
            &format!("the agent holds the configuration of {what}"),
            || {
                let status = agent.status();
                let held = held(&status);
                last = Some(status);
                (held.as_ref() == Some(wanted)).then_some(())
            },
        )
    }));
    if found.is_err() {
        let status = last.unwrap_or_default();
        panic!(
            "after {what} the agent holds {:?} (configuration version {}), wanted {wanted:?}",
            held(&status),
            status["config_version"]
        );
    }
}
