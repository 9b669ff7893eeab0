//! Change tracking: a private PropertyCollector with one filter over the VM
//! view and a `WaitForUpdatesEx` loop.
//!
//! The first answer (version "") lists every VM; later answers carry only
//! changes. The collector version is stored after every answer, truncated
//! answers are drained at once, and on `InvalidCollectorVersion`, a re-login
//! or a lost collector the watch starts over from a full listing and reports
//! only the differences, so the caller sees a consistent stream of
//! [`Change::Enter`], [`Change::Modify`] and [`Change::Leave`].
//!
//! Between listings the watch keeps only a 64-bit digest of each VM as last
//! reported (about 40 bytes a VM, moref inline): the VMs a change names are
//! read again, all in one call per answer, and a change that leaves the
//! reported record as it was is not reported.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use compact_str::CompactString;

use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::inventory::{RawVm, Topology, Vm, VM_PROPERTIES};
use crate::session::{is_not_authenticated, Token};
use crate::soap::{self, MoRef};
use crate::xml::Node;

/// One change to the set of VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A VM appeared (or was there when the watch started).
    Enter(Vm),
    /// A VM's properties changed; the record is complete and current.
    Modify(Vm),
    /// A VM was removed (or unregistered).
    Leave { moref: String },
}

/// How long one `WaitForUpdatesEx` waits on the server before answering empty.
const MAX_WAIT_SECONDS: u32 = 60;

enum Update {
    Enter(Box<RawVm>),
    Modify {
        moref: String,
        changes: Vec<(String, bool, Option<Node>)>,
    },
    Leave(String),
}

impl Client {
    /// Watches the VMs until `cancel` fires. The stream starts with an
    /// [`Change::Enter`] for every existing VM. Errors are reported as items
    /// and the watch retries with a back-off; it ends only when cancelled.
    pub fn watch(&self, cancel: CancellationToken) -> BoxStream<'static, Result<Change>> {
        let (tx, rx) = mpsc::channel(1024);
        let client = self.clone();
        let span = info_span!("vcenter_watch", host = %self.inner.t.host);
        tokio::spawn(
            async move {
                let mut w = Watcher {
                    client,
                    tx,
                    cancel,
                    reported: HashMap::new(),
                };
                w.run().await;
            }
            .instrument(span),
        );
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }
}

struct Watcher {
    client: Client,
    tx: mpsc::Sender<Result<Change>>,
    cancel: CancellationToken,
    /// Digest of each VM as last reported to the caller, by moref (held inline: the map is
    /// long-lived and is filled while a listing's short-lived allocations come and go).
    reported: HashMap<CompactString, u64>,
}

fn digest(vm: &Vm) -> u64 {
    let mut h = DefaultHasher::new();
    vm.hash(&mut h);
    h.finish()
}

struct Collector {
    tok: Token,
    view: MoRef,
    pc: MoRef,
}

impl Watcher {
    async fn run(&mut self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let res = self.session_pass().await;
            let err = match res {
                Ok(()) => return, // cancelled or receiver gone
                Err(e) => e,
            };
            if matches!(err, Error::Cancelled) {
                return;
            }
            let quiet = is_not_authenticated(&err)
                || matches!(&err, Error::Fault { name, .. } if name == "InvalidCollectorVersion")
                || matches!(err, Error::NotFound { .. });
            if quiet {
                debug!(error = %err, "restarting the watch from a full listing");
                backoff = Duration::from_secs(1);
                continue;
            }
            warn!(error = %err, retry_in = ?backoff, "vCenter watch failed");
            if self.tx.send(Err(err)).await.is_err() {
                return;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    /// One collector's lifetime: set up, initial sync, incremental updates.
    async fn session_pass(&mut self) -> Result<()> {
        let client = self.client.clone();
        let i = &client.inner;
        let tok = i.session.token(&i.t, &i.sc).await?;
        let res = self.setup(tok.clone()).await;
        let col = match res {
            Ok(c) => c,
            Err(e) if is_not_authenticated(&e) => {
                i.session.relogin(&i.t, &i.sc, Some(tok.generation)).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let out = self.pump(&col).await;
        if let Err(e) = &out {
            if is_not_authenticated(e) {
                i.session.relogin(&i.t, &i.sc, Some(tok.generation)).await?;
            }
        }
        // Best effort: both die with the session anyway.
        let _ = self
            .client
            .call_with(
                &col.tok,
                soap::call("DestroyPropertyCollector", &col.pc, ""),
            )
            .await;
        self.client.destroy_view(&col.tok, &col.view).await;
        out
    }

    async fn setup(&self, tok: Token) -> Result<Collector> {
        let c = &self.client;
        let view = c.create_view(&tok, &["VirtualMachine"]).await?;
        let resp = c
            .call_with(
                &tok,
                soap::call(
                    "CreatePropertyCollector",
                    &c.inner.sc.property_collector,
                    "",
                ),
            )
            .await?;
        let pc = resp
            .child("returnval")
            .and_then(MoRef::from_node)
            .ok_or_else(|| Error::malformed("CreatePropertyCollector without returnval"))?;
        let spec = soap::view_filter_spec(&view, &[("VirtualMachine", VM_PROPERTIES)], "spec");
        c.call_with(
            &tok,
            soap::call(
                "CreateFilter",
                &pc,
                &format!("{spec}<partialUpdates>false</partialUpdates>"),
            ),
        )
        .await?;
        Ok(Collector { tok, view, pc })
    }

    async fn pump(&mut self, col: &Collector) -> Result<()> {
        let mut topo = self.client.topology(&col.tok).await?;
        let mut version = String::new();
        let mut initial: Option<HashMap<String, RawVm>> = Some(HashMap::new());
        loop {
            let (updates, next, truncated) = tokio::select! {
                _ = self.cancel.cancelled() => return Err(Error::Cancelled),
                _ = self.tx.closed() => return Err(Error::Cancelled),
                r = self.wait(col, &version) => r?,
            };
            let Some(next) = next else {
                continue; // the wait timed out with no change
            };
            version = next;
            if let Some(fresh) = &mut initial {
                for u in updates {
                    match u {
                        Update::Enter(raw) => {
                            fresh.insert(raw.moref.clone(), *raw);
                        }
                        Update::Modify { moref, changes } => {
                            let raw = fresh
                                .entry(moref.clone())
                                .or_insert_with(|| RawVm::new(&moref));
                            apply(raw, changes);
                        }
                        Update::Leave(moref) => {
                            fresh.remove(&moref);
                        }
                    }
                }
            } else {
                // Placement may name a folder, host or datastore created since.
                let stale = updates.iter().any(|u| match u {
                    Update::Enter(raw) => raw.needs_topology(&topo),
                    Update::Modify { .. } => true,
                    Update::Leave(_) => false,
                });
                if stale {
                    topo = self.client.topology(&col.tok).await?;
                }
                self.report(col, &topo, updates).await?;
            }
            if truncated {
                continue; // drain the rest of this version at once
            }
            if let Some(fresh) = initial.take() {
                if fresh.values().any(|r| r.needs_topology(&topo)) {
                    topo = self.client.topology(&col.tok).await?;
                }
                self.reconcile(fresh, &topo).await?;
            }
        }
    }

    /// Reports one answer's updates. The modified VMs are read again in one
    /// call: only their digests are kept, and a change may lie below a
    /// requested property.
    async fn report(
        &mut self,
        col: &Collector,
        topo: &Topology,
        updates: Vec<Update>,
    ) -> Result<()> {
        let modified: Vec<&str> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Modify { moref, .. } => Some(moref.as_str()),
                _ => None,
            })
            .collect();
        let mut current = self.fetch_vms(col, &modified).await?;
        for u in updates {
            match u {
                Update::Enter(raw) => {
                    let vm = raw.resolve(topo);
                    self.reported.insert(raw.moref.as_str().into(), digest(&vm));
                    self.emit(Change::Enter(vm)).await?;
                }
                Update::Modify { moref, .. } => {
                    // Gone since (its leave follows), or already reported from this answer.
                    let Some(raw) = current.remove(&moref) else {
                        continue;
                    };
                    let vm = raw.resolve(topo);
                    let d = digest(&vm);
                    if self.reported.insert(moref.as_str().into(), d) != Some(d) {
                        self.emit(Change::Modify(vm)).await?;
                    }
                }
                Update::Leave(moref) => {
                    self.reported.remove(moref.as_str());
                    self.emit(Change::Leave { moref }).await?;
                }
            }
        }
        Ok(())
    }

    /// After a full listing: report what differs from what the caller knows.
    async fn reconcile(&mut self, fresh: HashMap<String, RawVm>, topo: &Topology) -> Result<()> {
        let gone: Vec<String> = self
            .reported
            .keys()
            .filter(|k| !fresh.contains_key(k.as_str()))
            .map(|k| k.to_string())
            .collect();
        for moref in gone {
            self.reported.remove(moref.as_str());
            self.emit(Change::Leave { moref }).await?;
        }
        let mut entries: Vec<_> = fresh.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (moref, raw) in entries {
            let vm = raw.resolve(topo);
            let d = digest(&vm);
            match self.reported.insert(moref.as_str().into(), d) {
                None => self.emit(Change::Enter(vm)).await?,
                Some(old) if old != d => self.emit(Change::Modify(vm)).await?,
                Some(_) => {}
            }
        }
        Ok(())
    }

    async fn emit(&self, change: Change) -> Result<()> {
        self.tx.send(Ok(change)).await.map_err(|_| Error::Cancelled)
    }

    /// The current properties of `morefs` (those that still exist), in one
    /// `RetrievePropertiesEx` (continued while the server pages).
    async fn fetch_vms(&self, col: &Collector, morefs: &[&str]) -> Result<HashMap<String, RawVm>> {
        let mut out = HashMap::new();
        if morefs.is_empty() {
            return Ok(out);
        }
        let mut spec =
            String::from("<specSet><propSet><type>VirtualMachine</type><all>false</all>");
        for p in VM_PROPERTIES {
            spec.push_str(&format!("<pathSet>{p}</pathSet>"));
        }
        spec.push_str("</propSet>");
        let mut unique: Vec<&str> = morefs.to_vec();
        unique.sort_unstable();
        unique.dedup();
        for moref in unique {
            spec.push_str(&format!(
                "<objectSet>{}<skip>false</skip></objectSet>",
                MoRef::new("VirtualMachine", moref).xml("obj")
            ));
        }
        spec.push_str(
            "<reportMissingObjectsInResults>false</reportMissingObjectsInResults></specSet>",
        );
        let res = self
            .client
            .retrieve_spec(&col.tok, &spec, |o| {
                let raw = RawVm::from_object(&o);
                out.insert(raw.moref.clone(), raw);
                Ok(())
            })
            .await;
        match res {
            Ok(()) => Ok(out),
            // One of them went away while being read: read them one by one.
            Err(Error::NotFound { .. }) if morefs.len() > 1 => {
                let mut out = HashMap::new();
                for moref in morefs {
                    out.extend(Box::pin(self.fetch_vms(col, &[moref])).await?);
                }
                Ok(out)
            }
            Err(Error::NotFound { .. }) => Ok(out),
            Err(e) => Err(e),
        }
    }

    /// One `WaitForUpdatesEx`: the updates, the new version (None when the
    /// wait timed out) and whether the answer was truncated.
    async fn wait(
        &self,
        col: &Collector,
        version: &str,
    ) -> Result<(Vec<Update>, Option<String>, bool)> {
        let i = &self.client.inner;
        let body = soap::call(
            "WaitForUpdatesEx",
            &col.pc,
            &format!(
                "{}<options><maxWaitSeconds>{MAX_WAIT_SECONDS}</maxWaitSeconds></options>",
                soap::text_arg("version", version)
            ),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let reply =
            i.t.call_streaming(
                Some(col.tok.cookie.expose()),
                body,
                &["objectSet"],
                move |n| {
                    let _ = tx.send(parse_update(n)?);
                    Ok(())
                },
            )
            .await?;
        let updates: Vec<Update> = rx.try_iter().collect();
        let rv = reply.body.child("returnval");
        let Some(rv) = rv else {
            return Ok((updates, None, false));
        };
        let next = rv.child_text("version").map(str::to_string);
        let truncated = rv
            .child_text("truncated")
            .is_some_and(|t| t.trim() == "true");
        Ok((
            updates,
            next.or_else(|| Some(version.to_string())),
            truncated,
        ))
    }
}

fn apply(raw: &mut RawVm, changes: Vec<(String, bool, Option<Node>)>) {
    for (path, removed, val) in changes {
        raw.set(&path, if removed { None } else { val.as_ref() });
    }
}

pub(crate) fn parse_update_for_fuzzing(n: Node) -> Result<()> {
    let u = parse_update(n)?;
    if let Update::Enter(raw) = u {
        let _ = raw.resolve(&Topology::default());
    }
    Ok(())
}

/// `<objectSet><kind/><obj/><changeSet><name/><op/><val/></changeSet>...`
fn parse_update(n: Node) -> Result<Update> {
    let kind = n.child_text("kind").unwrap_or("").trim().to_string();
    let obj = n
        .child("obj")
        .and_then(MoRef::from_node)
        .ok_or_else(|| Error::malformed("object update without obj"))?;
    let mut changes = Vec::new();
    for c in n.children.into_iter().filter(|c| c.name == "changeSet") {
        let mut name = String::new();
        let mut op = String::new();
        let mut val = None;
        for p in c.children {
            match p.name.as_str() {
                "name" => name = p.text,
                "op" => op = p.text,
                "val" => val = Some(p),
                _ => {}
            }
        }
        let removed = matches!(op.trim(), "remove" | "indirectRemove");
        changes.push((name, removed, val));
    }
    Ok(match kind.as_str() {
        "enter" => {
            let mut raw = RawVm::new(&obj.value);
            apply(&mut raw, changes);
            Update::Enter(Box::new(raw))
        }
        "leave" => Update::Leave(obj.value),
        _ => Update::Modify {
            moref: obj.value,
            changes,
        },
    })
}
