//! `GET /metrics` in the Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::runtime::Runtime;

pub fn router(rt: Arc<Runtime>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(rt)
}

async fn metrics(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    rt.metrics.set_outbox(rt.store.outbox_len());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        rt.metrics.render(),
    )
}
