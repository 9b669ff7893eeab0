//! Job records in the agent's store, one sled tree keyed by job id.

use crate::error::{Error, Result};

use super::record::{JobId, JobRecord, JobState};

/// Why a job found `Running` or `Queued` at start is failed.
pub const INTERRUPTED: &str = "interrupted: the agent stopped while this job was running";

#[derive(Clone)]
pub struct JobStore {
    tree: sled::Tree,
}

impl JobStore {
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    pub fn put(&self, record: &JobRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record).expect("job record serialises");
        self.tree
            .insert(record.id.as_str(), bytes)
            .map_err(|source| Error::State {
                what: "write job",
                source,
            })?;
        Ok(())
    }

    pub fn get(&self, id: &JobId) -> Result<Option<JobRecord>> {
        let Some(bytes) = self.tree.get(id.as_str()).map_err(|source| Error::State {
            what: "read job",
            source,
        })?
        else {
            return Ok(None);
        };
        decode(id.as_str(), &bytes).map(Some)
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Result<Vec<JobRecord>> {
        let mut jobs = Vec::new();
        for item in self.tree.iter() {
            let (key, bytes) = item.map_err(|source| Error::State {
                what: "list jobs",
                source,
            })?;
            jobs.push(decode(&String::from_utf8_lossy(&key), &bytes)?);
        }
        jobs.sort_by_key(|j| j.created_at);
        Ok(jobs)
    }

    /// Marks every job left `Queued` or `Running` by an agent that stopped as failed and
    /// interrupted. Returns how many.
    pub fn fail_interrupted(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize> {
        let mut n = 0;
        for mut job in self.list()? {
            if job.state.is_final() {
                continue;
            }
            tracing::warn!(job = %job.id, kind = job.kind.as_str(), "job interrupted by a stop of the agent");
            job.state = JobState::Failed;
            job.interrupted = true;
            job.message = Some(INTERRUPTED.to_string());
            job.finished_at = Some(now);
            self.put(&job)?;
            n += 1;
        }
        Ok(n)
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<JobRecord> {
    serde_json::from_slice(bytes).map_err(|source| Error::StateCorrupt {
        key: format!("jobs/{key}"),
        source,
    })
}
