//! `GET /metrics` in the Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::outbox::Outbox;

pub fn router(metrics: Arc<Metrics>, outbox: Arc<Outbox>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state((metrics, outbox))
}

async fn render(State((metrics, outbox)): State<(Arc<Metrics>, Arc<Outbox>)>) -> impl IntoResponse {
    metrics.set_outbox(outbox.len());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
