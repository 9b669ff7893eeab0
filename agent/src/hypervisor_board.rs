//! The hypervisor state as `status` and the heartbeat report it, fenced by connection
//! generation.
//!
//! Each (re)configuration of the hypervisor link starts a new generation with
//! [`HypervisorBoard::begin`]; a connection reports with the generation it was started
//! under, and a report from an older generation is dropped. A connection that is being
//! replaced therefore cannot overwrite its successor's `ONLINE` with its own end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use bgw_protocol::heartbeat::HypervisorStatus;

/// The generation a connection was started under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Generation(u64);

impl Generation {
    /// For work outside any connection (a sync refused for an unknown hypervisor): its
    /// state reports are always dropped.
    pub const DETACHED: Generation = Generation(u64::MAX);
}

#[derive(Debug, Default)]
struct Slot {
    generation: u64,
    status: HypervisorStatus,
}

/// The current hypervisor state and the generation allowed to change it.
#[derive(Debug, Default)]
pub struct HypervisorBoard {
    slot: RwLock<Slot>,
    dropped: AtomicU64,
}

impl HypervisorBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state to show.
    pub fn current(&self) -> HypervisorStatus {
        self.slot
            .read()
            .expect("hypervisor board lock")
            .status
            .clone()
    }

    /// Starts a new generation with `status`; reports of every older generation are dropped
    /// from now on.
    pub fn begin(&self, status: HypervisorStatus) -> Generation {
        let mut slot = self.slot.write().expect("hypervisor board lock");
        slot.generation += 1;
        slot.status = status;
        Generation(slot.generation)
    }

    /// How many reports of replaced connections were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records `status` if `generation` is still the current one. Returns whether it was
    /// recorded.
    pub fn report(&self, generation: Generation, status: HypervisorStatus) -> bool {
        let mut slot = self.slot.write().expect("hypervisor board lock");
        if slot.generation != generation.0 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                stale = generation.0,
                current = slot.generation,
                state = status.state.as_str(),
                "dropping the state report of a replaced hypervisor connection"
            );
            return false;
        }
        slot.status = status;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgw_protocol::heartbeat::HypervisorState;

    fn status(state: HypervisorState, message: &str) -> HypervisorStatus {
        HypervisorStatus {
            hypervisor_arn: Some("arn:hv".into()),
            state,
            message: Some(message.into()),
        }
    }

    #[test]
    fn a_replaced_connection_cannot_overwrite_its_successor() {
        let board = HypervisorBoard::new();
        let old = board.begin(status(HypervisorState::Pending, "connecting"));
        assert!(board.report(old, status(HypervisorState::Online, "old")));
        let new = board.begin(status(HypervisorState::Pending, "connecting"));
        assert!(board.report(new, status(HypervisorState::Online, "new")));
        // The old connection's end arrives after the new one is online: dropped.
        assert!(!board.report(
            old,
            status(HypervisorState::Offline, "the change watch ended")
        ));
        let shown = board.current();
        assert_eq!(shown.state, HypervisorState::Online);
        assert_eq!(shown.message.as_deref(), Some("new"));
        assert_eq!(board.dropped(), 1);
    }

    #[test]
    fn the_current_generation_reports_every_state() {
        let board = HypervisorBoard::new();
        let g = board.begin(HypervisorStatus::default());
        assert!(board.report(g, status(HypervisorState::Offline, "down")));
        assert_eq!(board.current().state, HypervisorState::Offline);
        assert!(board.report(g, status(HypervisorState::Online, "up")));
        assert_eq!(board.current().state, HypervisorState::Online);
    }

    #[test]
    fn disassociation_fences_the_last_connection() {
        let board = HypervisorBoard::new();
        let g = board.begin(status(HypervisorState::Pending, "connecting"));
        board.begin(HypervisorStatus::default());
        assert!(!board.report(g, status(HypervisorState::Error, "late")));
        assert_eq!(board.current(), HypervisorStatus::default());
    }
}
