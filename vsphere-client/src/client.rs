//! The public [`Client`]: connect, list the inventory, keep the session alive
//! and log out.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::error::{Error, Result};
use crate::inventory::{Disk, RawVm, Topology, Vm, DISK_PROPERTIES, TOPOLOGY_TYPES, VM_PROPERTIES};
use crate::secret::Secret;
use crate::session::{Session, Token};
use crate::soap::{self, MoRef, ObjectContent, ServiceContent};
use crate::tags::TagState;
use crate::tls::{Thumbprint, Trust};
use crate::transport::Transport;
use crate::xml::{Limits, Node};

/// How often [`Client::keep_alive_until`] touches the session: well inside
/// vCenter's 30-minute idle timeout.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// How to reach and log in to vCenter.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or address, optionally with `:port` (default 443).
    pub host: String,
    pub username: String,
    pub password: Secret,
    pub trust: Trust,
    /// VMs per page of the listing (the server's `maxObjects`). Default 1,000.
    pub page_size: usize,
    /// Response size and nesting limits.
    pub limits: Limits,
}

impl ConnectOptions {
    pub fn new(
        host: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret>,
        trust: Trust,
    ) -> Self {
        ConnectOptions {
            host: host.into(),
            username: username.into(),
            password: password.into(),
            trust,
            page_size: 1000,
            limits: Limits::default(),
        }
    }
}

/// What was learned while connecting.
#[derive(Debug, Clone)]
pub struct ConnectInfo {
    /// SHA-256 thumbprint of the certificate the server presented: record it
    /// after a trust-on-first-use connection and pin it from then on.
    pub seen_thumbprint: Option<Thumbprint>,
    /// e.g. "VMware vCenter Server 7.0.3 build-19234570".
    pub product: String,
    pub api_version: String,
    /// vCenter's instance UUID.
    pub instance_uuid: String,
}

/// A logged-in vCenter client. Cheap to clone; clones share the session.
///
/// Call [`Client::logout`] when done: vCenter limits the number of sessions.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub t: Transport,
    pub sc: ServiceContent,
    pub session: Session,
    pub page_size: usize,
    pub tags: Mutex<TagState>,
    /// The inventory view and the session generation it belongs to.
    pub view: Mutex<Option<(u64, MoRef)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.inner.t.host)
            .field("user", &self.inner.session.username())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects, checks the certificate and logs in.
    pub async fn connect(opts: ConnectOptions) -> Result<(Client, ConnectInfo)> {
        let t = Transport::new(&opts.host, &opts.trust, opts.limits)?;
        let reply = t.call(None, soap::retrieve_service_content()).await?;
        let sc = ServiceContent::parse(&reply.body)?;
        let session = Session::new(opts.username, opts.password);
        session.token(&t, &sc).await?;
        let info = ConnectInfo {
            seen_thumbprint: t.seen_thumbprint(),
            product: sc.about_full_name.clone(),
            api_version: sc.api_version.clone(),
            instance_uuid: sc.instance_uuid.clone(),
        };
        let inner = Inner {
            t,
            sc,
            session,
            page_size: opts.page_size.max(1),
            tags: Mutex::new(TagState::default()),
            view: Mutex::new(None),
        };
        Ok((
            Client {
                inner: Arc::new(inner),
            },
            info,
        ))
    }

    /// Number of HTTP requests this client has sent (SOAP and REST).
    pub fn request_count(&self) -> u64 {
        self.inner.t.request_count()
    }

    /// Keeps the session from expiring (vCenter drops idle sessions after about
    /// 30 minutes): call at least every 10 minutes. Logs in again if needed.
    pub async fn keepalive(&self) -> Result<()> {
        let i = &self.inner;
        let si = MoRef::new("ServiceInstance", "ServiceInstance");
        self.call(&soap::call("CurrentTime", &si, "")).await?;
        debug!(host = %i.t.host, "vCenter session kept alive");
        Ok(())
    }

    /// Calls [`Client::keepalive`] every [`KEEPALIVE_INTERVAL`] until `cancel`
    /// fires. Failures are logged and retried at the next tick.
    pub async fn keep_alive_until(&self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(KEEPALIVE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the session is fresh
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.keepalive().await {
                        warn!(error = %e, "vCenter keepalive failed");
                    }
                }
            }
        }
    }

    /// Logs out of the SOAP and tagging sessions.
    pub async fn logout(&self) -> Result<()> {
        let i = &self.inner;
        let tags = crate::tags::logout(self).await;
        let soap = i.session.logout(&i.t, &i.sc).await;
        soap.and(tags)
    }

    /// A small SOAP call with the session, re-logging in once if needed.
    pub(crate) async fn call(&self, body: &str) -> Result<Node> {
        let i = &self.inner;
        i.session
            .with_session(&i.t, &i.sc, |tok| async move {
                Ok(i.t
                    .call(Some(tok.cookie.expose()), body.to_string())
                    .await?
                    .body)
            })
            .await
    }

    pub(crate) async fn call_with(&self, tok: &Token, body: String) -> Result<Node> {
        Ok(self
            .inner
            .t
            .call(Some(tok.cookie.expose()), body)
            .await?
            .body)
    }

    pub(crate) async fn create_view(&self, tok: &Token, types: &[&str]) -> Result<MoRef> {
        let i = &self.inner;
        let mut args = i.sc.root_folder.xml("container");
        for ty in types {
            args.push_str(&soap::text_arg("type", ty));
        }
        args.push_str("<recursive>true</recursive>");
        let resp = self
            .call_with(
                tok,
                soap::call("CreateContainerView", &i.sc.view_manager, &args),
            )
            .await?;
        resp.child("returnval")
            .and_then(MoRef::from_node)
            .ok_or_else(|| Error::malformed("CreateContainerView without returnval"))
    }

    pub(crate) async fn destroy_view(&self, tok: &Token, view: &MoRef) {
        if let Err(e) = self
            .call_with(tok, soap::call("DestroyView", view, ""))
            .await
        {
            debug!(error = %e, "could not destroy a container view");
        }
    }

    /// Reads names and parents of every folder, datacenter, vApp, pool,
    /// cluster, host and datastore with one view and one retrieval.
    pub(crate) async fn topology(&self, tok: &Token) -> Result<Topology> {
        let view = self.inventory_view(tok).await?;
        let mut topo = self.root_topology();
        let res = self
            .retrieve_all(tok, &view, TOPOLOGY_TYPES, |o| {
                topo.insert(&o);
                Ok(())
            })
            .await;
        if matches!(res, Err(Error::NotFound { .. })) {
            self.forget_view().await;
        }
        res.map(|_| topo)
    }

    /// A topology holding only the root folder, which is not a member of a
    /// view over itself.
    fn root_topology(&self) -> Topology {
        Topology::from_objects([ObjectContent {
            obj: self.inner.sc.root_folder.clone(),
            props: vec![(
                "name".into(),
                Node {
                    name: "val".into(),
                    text: "Datacenters".into(),
                    ..Node::default()
                },
            )],
        }])
    }

    /// The session's container view over the VMs and everything their
    /// paths and names come from. Created once per session and reused; it
    /// goes away with the session.
    pub(crate) async fn inventory_view(&self, tok: &Token) -> Result<MoRef> {
        let mut cached = self.inner.view.lock().await;
        if let Some((generation, view)) = cached.as_ref() {
            if *generation == tok.generation {
                return Ok(view.clone());
            }
        }
        let mut types = vec!["VirtualMachine"];
        types.extend(TOPOLOGY_TYPES.iter().map(|(t, _)| *t));
        let view = self.create_view(tok, &types).await?;
        *cached = Some((tok.generation, view.clone()));
        Ok(view)
    }

    pub(crate) async fn forget_view(&self) {
        *self.inner.view.lock().await = None;
    }

    /// `RetrievePropertiesEx` + `ContinueRetrievePropertiesEx` over a view,
    /// small answers only (the topology).
    async fn retrieve_all(
        &self,
        tok: &Token,
        view: &MoRef,
        props: &[(&str, &[&str])],
        each: impl FnMut(ObjectContent) -> Result<()>,
    ) -> Result<()> {
        let spec = soap::view_filter_spec(view, props, "specSet");
        self.retrieve_spec(tok, &spec, each).await
    }

    /// `RetrievePropertiesEx` for a `specSet` given as XML, then
    /// `ContinueRetrievePropertiesEx` while the server returns a token.
    pub(crate) async fn retrieve_spec(
        &self,
        tok: &Token,
        spec_set: &str,
        mut each: impl FnMut(ObjectContent) -> Result<()>,
    ) -> Result<()> {
        let i = &self.inner;
        let pc = &i.sc.property_collector;
        let args = format!(
            "{spec_set}<options><maxObjects>{}</maxObjects></options>",
            i.page_size
        );
        let mut resp = self
            .call_with(tok, soap::call("RetrievePropertiesEx", pc, &args))
            .await?;
        loop {
            let Some(rv) = resp.children.into_iter().find(|c| c.name == "returnval") else {
                return Ok(()); // no objects at all
            };
            let mut token = None;
            for c in rv.children {
                match c.name.as_str() {
                    "objects" => each(ObjectContent::from_objects(c)?)?,
                    "token" => token = Some(c.text),
                    _ => {}
                }
            }
            let Some(token) = token else { return Ok(()) };
            resp = self
                .call_with(
                    tok,
                    soap::call(
                        "ContinueRetrievePropertiesEx",
                        pc,
                        &soap::text_arg("token", &token),
                    ),
                )
                .await?;
        }
    }

    /// Streams every VM, `page` by `page`, to `on_page`. One view over the
    /// VMs, one over folders and hosts, and one `RetrievePropertiesEx` per page
    /// of `page_size` VMs (a single one when the server does not page): the
    /// number of calls does not grow with the number of VMs per page.
    ///
    /// If the session has to be re-established before the first page arrived,
    /// the listing restarts transparently; after that it fails instead, so a
    /// page is never delivered twice.
    pub async fn inventory(
        &self,
        mut on_page: impl FnMut(Vec<Vm>) + Send,
    ) -> Result<InventoryStats> {
        let i = &self.inner;
        let delivered = std::sync::atomic::AtomicBool::new(false);
        let on_page = std::sync::Mutex::new(&mut on_page);
        let span = info_span!("vcenter_inventory", host = %i.t.host);
        i.session
            .with_session(&i.t, &i.sc, |tok| {
                let delivered = &delivered;
                let on_page = &on_page;
                async move {
                    if delivered.load(std::sync::atomic::Ordering::Relaxed) {
                        return Err(Error::Authentication {
                            message: "session lost in the middle of a listing".into(),
                        });
                    }
                    let mark = |page: Vec<Vm>| {
                        delivered.store(true, std::sync::atomic::Ordering::Relaxed);
                        let mut f = on_page.lock().unwrap_or_else(|e| e.into_inner());
                        (*f)(page)
                    };
                    let view = self.inventory_view(&tok).await?;
                    match self.stream_inventory(&tok, &view, mark).await {
                        // The cached view is gone: make a new one, once.
                        Err(Error::NotFound { .. })
                            if !delivered.load(std::sync::atomic::Ordering::Relaxed) =>
                        {
                            self.forget_view().await;
                            let view = self.inventory_view(&tok).await?;
                            self.stream_inventory(&tok, &view, mark).await
                        }
                        other => other,
                    }
                }
            })
            .instrument(span)
            .await
    }

    /// The listing as a stream of pages, for callers that await between pages
    /// (for example to read the tags of each page). Pages wait in memory while
    /// the consumer is slower than the server.
    pub fn inventory_stream(&self) -> BoxStream<'static, Result<Vec<Vm>>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.clone();
        tokio::spawn(async move {
            let pages = tx.clone();
            let res = client
                .inventory(move |page| {
                    let _ = pages.send(Ok(page));
                })
                .await;
            if let Err(e) = res {
                let _ = tx.send(Err(e));
            }
        });
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }

    /// The virtual disks of the VMs `morefs`, keyed by moref: one `RetrievePropertiesEx` per
    /// `page_size` VMs over their devices only. This is what a backup reads when it plans its
    /// work; the listing leaves [`Vm::disks`] empty. A VM that no longer exists is left out.
    pub async fn disks_for<S: AsRef<str>>(
        &self,
        morefs: &[S],
    ) -> Result<std::collections::HashMap<String, Vec<Disk>>> {
        let mut unique: Vec<&str> = morefs.iter().map(AsRef::as_ref).collect();
        unique.sort_unstable();
        unique.dedup();
        let i = &self.inner;
        let mut out = std::collections::HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(i.page_size.max(1)) {
            let found = i
                .session
                .with_session(&i.t, &i.sc, |tok| async move {
                    self.read_disks(&tok, chunk).await
                })
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    /// Sets [`Vm::disks`] of each VM in `vms` from [`Client::disks_for`].
    pub async fn fill_disks(&self, vms: &mut [Vm]) -> Result<()> {
        let morefs: Vec<&str> = vms.iter().map(|v| v.moref.as_str()).collect();
        let mut disks = self.disks_for(&morefs).await?;
        for vm in vms {
            vm.disks = disks.remove(&vm.moref).unwrap_or_default();
        }
        Ok(())
    }

    async fn read_disks(
        &self,
        tok: &Token,
        morefs: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<Disk>>> {
        let mut out = std::collections::HashMap::new();
        if morefs.is_empty() {
            return Ok(out);
        }
        let mut spec =
            String::from("<specSet><propSet><type>VirtualMachine</type><all>false</all>");
        for p in DISK_PROPERTIES {
            spec.push_str(&format!("<pathSet>{p}</pathSet>"));
        }
        spec.push_str("</propSet>");
        for moref in morefs {
            spec.push_str(&format!(
                "<objectSet>{}<skip>false</skip></objectSet>",
                MoRef::new("VirtualMachine", *moref).xml("obj")
            ));
        }
        spec.push_str(
            "<reportMissingObjectsInResults>false</reportMissingObjectsInResults></specSet>",
        );
        let res = self
            .retrieve_spec(tok, &spec, |o| {
                let raw = RawVm::from_object(&o);
                out.insert(raw.moref.clone(), raw.disks());
                Ok(())
            })
            .await;
        match res {
            Ok(()) => Ok(out),
            // One of them went away while being read: read them one by one.
            Err(Error::NotFound { .. }) if morefs.len() > 1 => {
                let mut out = std::collections::HashMap::new();
                for moref in morefs {
                    out.extend(Box::pin(self.read_disks(tok, &[moref])).await?);
                }
                Ok(out)
            }
            Err(Error::NotFound { .. }) => Ok(out),
            Err(e) => Err(e),
        }
    }

    /// All VMs at once. Prefer [`Client::inventory`] for large inventories.
    pub async fn list_vms(&self) -> Result<Vec<Vm>> {
        let mut all = Vec::new();
        self.inventory(|page| all.extend(page)).await?;
        Ok(all)
    }

    /// One `RetrievePropertiesEx` (plus `ContinueRetrievePropertiesEx` while
    /// the server pages) over the inventory view, for the VMs and the objects
    /// their paths and names come from together. A VM is handed on as soon as
    /// everything it refers to has been seen; the few that arrive before their
    /// folders wait, as compact records, until the end of the answer.
    async fn stream_inventory(
        &self,
        tok: &Token,
        view: &MoRef,
        mut on_page: impl FnMut(Vec<Vm>),
    ) -> Result<InventoryStats> {
        let i = &self.inner;
        let pc = &i.sc.property_collector;
        let page_size = i.page_size;
        let mut stats = InventoryStats::default();
        let mut props: Vec<(&str, &[&str])> = TOPOLOGY_TYPES.to_vec();
        props.push(("VirtualMachine", VM_PROPERTIES));
        let mut body = soap::call(
            "RetrievePropertiesEx",
            pc,
            &format!(
                "{}<options><maxObjects>{page_size}</maxObjects></options>",
                soap::view_filter_spec(view, &props, "specSet")
            ),
        );
        let state = Arc::new(std::sync::Mutex::new(Listing {
            topo: self.root_topology(),
            pending: Vec::new(),
        }));
        let mut page = Vec::with_capacity(page_size.min(4096));
        let mut deliver = |vm: Vm, page: &mut Vec<Vm>, stats: &mut InventoryStats| {
            page.push(vm);
            if page.len() >= page_size {
                stats.vms += page.len();
                stats.pages += 1;
                on_page(std::mem::replace(
                    page,
                    Vec::with_capacity(page_size.min(4096)),
                ));
            }
        };
        loop {
            let (tx, mut rx) = mpsc::channel::<Vm>(1024);
            let shared = state.clone();
            let call =
                i.t.call_streaming(Some(tok.cookie.expose()), body, &["objects"], move |node| {
                    let o = ObjectContent::from_objects(node)?;
                    let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if o.obj.kind != "VirtualMachine" {
                        st.topo.insert(&o);
                        return Ok(());
                    }
                    let raw = RawVm::from_object(&o);
                    if raw.needs_topology(&st.topo) {
                        st.pending.push(raw);
                        return Ok(());
                    }
                    let vm = raw.resolve(&st.topo);
                    drop(st);
                    tx.blocking_send(vm).map_err(|_| Error::Cancelled)
                });
            tokio::pin!(call);
            let reply = loop {
                tokio::select! {
                    Some(vm) = rx.recv() => deliver(vm, &mut page, &mut stats),
                    reply = &mut call => break reply,
                }
            };
            while let Some(vm) = rx.recv().await {
                deliver(vm, &mut page, &mut stats);
            }
            let reply = reply?;
            stats.calls += 1;
            let token = reply
                .body
                .child("returnval")
                .and_then(|rv| rv.child_text("token"))
                .map(str::to_string);
            let last = token.is_none();
            // VMs that arrived before their folders: ready now, or (at the
            // end) with whatever is known.
            let ready: Vec<Vm> = {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                let Listing { topo, pending } = &mut *st;
                let mut ready = Vec::new();
                pending.retain(|raw| {
                    if last || !raw.needs_topology(topo) {
                        ready.push(raw.resolve(topo));
                        false
                    } else {
                        true
                    }
                });
                ready
            };
            for vm in ready {
                deliver(vm, &mut page, &mut stats);
            }
            match token {
                Some(token) => {
                    body = soap::call(
                        "ContinueRetrievePropertiesEx",
                        pc,
                        &soap::text_arg("token", &token),
                    );
                }
                None => break,
            }
        }
        if !page.is_empty() {
            stats.vms += page.len();
            stats.pages += 1;
            on_page(page);
        }
        Ok(stats)
    }
}

struct Listing {
    topo: Topology,
    pending: Vec<RawVm>,
}

/// Figures about one listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventoryStats {
    pub vms: usize,
    /// Pages handed to the caller.
    pub pages: usize,
    /// `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx` calls for the VMs.
    pub calls: usize,
}
