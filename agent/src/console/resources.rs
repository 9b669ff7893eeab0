//! 4: System resource check — vCPUs, RAM and root disk against what the gateway needs.

use std::path::Path;

const GIB: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warning,
    Fail,
}

impl Level {
    /// At or above `need`: OK; at least half of it: WARNING; less (or unknown): FAIL.
    pub fn of(found: Option<u64>, need: u64) -> Level {
        match found {
            Some(v) if v >= need => Level::Ok,
            Some(v) if v * 2 >= need => Level::Warning,
            _ => Level::Fail,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub need: String,
    pub found: String,
    pub level: Level,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Checks the values found (`None`: could not be read).
    pub fn from_values(
        vcpus: Option<u64>,
        ram_bytes: Option<u64>,
        disk_bytes: Option<u64>,
    ) -> Self {
        let gib = |v: Option<u64>| {
            v.map_or("unknown".to_string(), |b| {
                format!("{:.1} GiB", b as f64 / GIB as f64)
            })
        };
        Self {
            checks: vec![
                Check {
                    name: "vCPUs",
                    need: "4".into(),
                    found: vcpus.map_or("unknown".into(), |v| v.to_string()),
                    level: Level::of(vcpus, 4),
                },
                Check {
                    name: "RAM",
                    need: "16 GiB".into(),
                    found: gib(ram_bytes),
                    level: Level::of(ram_bytes, 16 * GIB),
                },
                Check {
                    name: "Root disk",
                    need: "80 GiB".into(),
                    found: gib(disk_bytes),
                    level: Level::of(disk_bytes, 80 * GIB),
                },
            ],
        }
    }

    /// Reads this machine (the root disk is the file system holding `root`).
    pub fn measure(root: &Path) -> Self {
        let mut sys = sysinfo::System::new();
        sys.refresh_memory();
        sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
        let cpus = sys.cpus().len() as u64;
        let vcpus = (cpus > 0).then_some(cpus);
        let ram = Some(sys.total_memory()).filter(|m| *m > 0);
        Self::from_values(vcpus, ram, disk_size(root))
    }

    pub fn count(&self, level: Level) -> usize {
        self.checks.iter().filter(|c| c.level == level).count()
    }

    /// The counts shown on the main menu line.
    pub fn summary(&self) -> String {
        let errors = self.count(Level::Fail);
        let warnings = self.count(Level::Warning);
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        format!(
            "({}, {})",
            plural(errors, "Error"),
            plural(warnings, "Warning")
        )
    }
}

/// The size of the file system holding `path`.
fn disk_size(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `stat` a valid out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_blocks as u64 * stat.f_frsize as u64)
}

pub fn render(report: &Report) -> Vec<String> {
    let mut out = vec![
        "4: System resource check".to_string(),
        String::new(),
        format!(
            "{:<12}{:<12}{:<16}{}",
            "Resource", "Needed", "Found", "Result"
        ),
    ];
    for c in &report.checks {
        out.push(format!(
            "{:<12}{:<12}{:<16}{}",
            c.name,
            c.need,
            c.found,
            c.level.as_str()
        ));
    }
    out.push(String::new());
    out.push(format!("Result: {}", report.summary()));
    if report.count(Level::Fail) + report.count(Level::Warning) > 0 {
        out.push("Give the gateway VM more resources in vSphere and restart it; below".into());
        out.push("these sizes backups and restores run slower or may fail.".into());
    }
    out
}
