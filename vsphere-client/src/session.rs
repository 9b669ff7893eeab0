//! The SOAP session: login, single-flight re-login on `NotAuthenticated`, and
//! logout.

use std::future::Future;

use tokio::sync::{Mutex, RwLock};
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::soap::{self, ServiceContent};
use crate::transport::Transport;

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub cookie: Secret,
    /// Incremented on every login, so callers can tell a new session apart.
    pub generation: u64,
}

pub(crate) struct Session {
    username: String,
    password: Secret,
    current: RwLock<Option<Token>>,
    login_lock: Mutex<()>,
}

/// True for the fault that means "log in again".
pub(crate) fn is_not_authenticated(err: &Error) -> bool {
    matches!(err, Error::Authentication { message } if message.starts_with("NotAuthenticated"))
}

impl Session {
    pub(crate) fn new(username: String, password: Secret) -> Self {
        Session {
            username,
            password,
            current: RwLock::new(None),
            login_lock: Mutex::new(()),
        }
    }

    pub(crate) fn username(&self) -> &str {
        &self.username
    }

    pub(crate) fn password(&self) -> &Secret {
        &self.password
    }

    async fn login(&self, t: &Transport, sc: &ServiceContent, generation: u64) -> Result<Token> {
        let body = soap::call(
            "Login",
            &sc.session_manager,
            &format!(
                "{}{}",
                soap::text_arg("userName", &self.username),
                soap::text_arg("password", self.password.expose())
            ),
        );
        let reply = t.call(None, body).await?;
        let cookie = reply
            .session_cookie
            .ok_or_else(|| Error::malformed("Login answer without a session cookie"))?;
        info!(user = %self.username, generation, "logged in to vCenter");
        Ok(Token {
            cookie: Secret::new(cookie),
            generation,
        })
    }

    /// The current session, logging in if there is none.
    pub(crate) async fn token(&self, t: &Transport, sc: &ServiceContent) -> Result<Token> {
        if let Some(tok) = self.current.read().await.clone() {
            return Ok(tok);
        }
        self.relogin(t, sc, None).await
    }

    /// Logs in again unless another caller already replaced session `stale`.
    /// Concurrent callers wait for the same login.
    pub(crate) async fn relogin(
        &self,
        t: &Transport,
        sc: &ServiceContent,
        stale: Option<u64>,
    ) -> Result<Token> {
        let _guard = self.login_lock.lock().await;
        let current = self.current.read().await.clone();
        if let Some(tok) = current.as_ref() {
            if stale != Some(tok.generation) {
                return Ok(tok.clone());
            }
        }
        let next = current.map_or(1, |t| t.generation + 1);
        let tok = self.login(t, sc, next).await?;
        *self.current.write().await = Some(tok.clone());
        Ok(tok)
    }

    /// Runs `op` with the session; on `NotAuthenticated` logs in once and runs it again.
    pub(crate) async fn with_session<T, F, Fut>(
        &self,
        t: &Transport,
        sc: &ServiceContent,
        op: F,
    ) -> Result<T>
    where
        F: Fn(Token) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let tok = self.token(t, sc).await?;
        match op(tok.clone()).await {
            Err(e) if is_not_authenticated(&e) => {
                warn!("vCenter session expired; logging in again");
                let tok = self.relogin(t, sc, Some(tok.generation)).await?;
                op(tok).await
            }
            other => other,
        }
    }

    /// Logs out, if logged in.
    pub(crate) async fn logout(&self, t: &Transport, sc: &ServiceContent) -> Result<()> {
        let _guard = self.login_lock.lock().await;
        let Some(tok) = self.current.write().await.take() else {
            return Ok(());
        };
        let body = soap::call("Logout", &sc.session_manager, "");
        match t.call(Some(tok.cookie.expose()), body).await {
            Ok(_) => {
                debug!("logged out of vCenter");
                Ok(())
            }
            Err(e) if is_not_authenticated(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
