//! Narrow interfaces to the stores of each domain, so that services depend on what they use
//! and tests run them on the in-memory implementations in [`super::memory`].
//!
//! One trait per domain, one module each:
//!
//! - [`GatewayAgents`]: protocol state of activated gateways, their access keys and the
//!   version of their configuration;
//! - [`ActivationKeys`]: one-time activation keys and the agent each was issued to;
//! - [`Catalogue`]: gateways, hypervisors, VMs and their tags, as the gateway protocol reads
//!   and changes them;
//! - [`SyncBookkeeping`]: which VMs a running metadata sync mentioned, and which syncs
//!   completed;
//! - [`MetadataStore`]: one metadata batch (catalogue and sync bookkeeping together) as one
//!   transaction, through a [`MetadataTx`] (the sled one is in `sled_metadata.rs`, the
//!   in-memory one beside the other in-memory stores).
//!
//! The sled [`super::Store`] implements every trait here over its own trees. A new domain (a
//! backup catalogue, a chunk store) gets its own trait and its own implementations beside
//! these; it does not add methods to the existing ones.

mod activation;
mod agents;
mod catalogue;
mod metadata;
mod sled_metadata;
mod syncs;

pub use activation::ActivationKeys;
pub use agents::GatewayAgents;
pub use catalogue::Catalogue;
pub use metadata::{MetadataScope, MetadataStore, MetadataTx, TxStep};
pub use syncs::SyncBookkeeping;
