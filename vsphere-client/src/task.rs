//! vCenter tasks: the `*_Task` methods answer with a `Task` at once; the work is done when the
//! task's `info.state` is `success` (with `info.result`) or `error` (with `info.error`).

use std::time::Duration;

use tracing::debug;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::soap::{self, MoRef, ObjectContent};
use crate::xml::Node;

/// First wait between two looks at a task; doubled up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_secs(1);

impl Client {
    /// Some properties of one managed object, or `None` when the server returned none.
    pub(crate) async fn properties(
        &self,
        obj: &MoRef,
        paths: &[&str],
    ) -> Result<Option<ObjectContent>> {
        let spec = soap::object_spec(obj, paths);
        let i = &self.inner;
        i.session
            .with_session(&i.t, &i.sc, |tok| {
                let spec = &spec;
                async move {
                    let mut found = None;
                    self.retrieve_spec(&tok, spec, |o| {
                        found = Some(o);
                        Ok(())
                    })
                    .await?;
                    Ok(found)
                }
            })
            .await
    }

    /// Calls a method that returns a `Task` and waits for the task to end. Returns the
    /// task's `info.result` (for example the new VM of `CreateVM_Task`).
    pub(crate) async fn run_task(&self, method: &str, this: &MoRef, args: &str) -> Result<Node> {
        let resp = self.call(&soap::call(method, this, args)).await?;
        let task = resp
            .child("returnval")
            .and_then(MoRef::from_node)
            .ok_or_else(|| Error::malformed(format!("{method} answered without a task")))?;
        self.wait_task(method, &task).await
    }

    /// Waits for `task` to succeed or fail, looking at it every 20 ms at first and every
    /// second at most.
    pub(crate) async fn wait_task(&self, what: &str, task: &MoRef) -> Result<Node> {
        let mut pause = FIRST_POLL;
        loop {
            let info = self
                .properties(task, &["info.state", "info.result", "info.error"])
                .await?
                .ok_or_else(|| Error::NotFound {
                    object: format!("Task {}", task.value),
                    message: format!("the task of {what} disappeared"),
                })?;
            let state = info.get("info.state").map(|n| n.text.trim().to_string());
            match state.as_deref() {
                Some("success") => {
                    debug!(task = %task.value, what, "task succeeded");
                    return Ok(info.get("info.result").cloned().unwrap_or_default());
                }
                Some("error") => return Err(task_error(what, info.get("info.error"))),
                _ => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

/// The fault of a failed task (`LocalizedMethodFault`: `fault` with an `xsi:type`, and
/// `localizedMessage`).
fn task_error(what: &str, error: Option<&Node>) -> Error {
    let fault = error.and_then(|e| e.child("fault"));
    let name = fault
        .and_then(|f| f.xsi_type.clone())
        .unwrap_or_else(|| "TaskFailed".to_string());
    let message = error
        .and_then(|e| e.child_text("localizedMessage"))
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| name.clone());
    match Error::from_fault(&name, &message, None) {
        Error::Fault { name, message } => Error::Fault {
            name,
            message: format!("{what}: {message}"),
        },
        other => other,
    }
}
