//! The HTTP API, `/metrics` and the embedded dashboard (no internet needed).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::jobs::JobView;
use crate::server::Shared;
use crate::{JobSpec, ServerError};

/// Largest request body: bigger ingest batches answer 413.
const BODY_BYTES_MAX: usize = 32 * 1024 * 1024;

type AppState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let protected = Router::new()
        .route("/", get(dashboard))
        .route("/api/streams", get(list_streams))
        .route("/api/streams/{name}", axum::routing::put(create_stream))
        .route(
            "/api/streams/{name}/events",
            axum::routing::post(post_events),
        )
        .route("/api/jobs", get(list_jobs).post(create_job))
        .route("/api/jobs/{name}", get(get_job).delete(delete_job))
        .route("/api/query", axum::routing::post(query))
        .route("/api/tables", get(tables))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth));
    let assets = Router::new()
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript", include_str!("../assets/app.js"))),
        )
        .route(
            "/assets/style.css",
            get(|| asset("text/css", include_str!("../assets/style.css"))),
        )
        .route(
            "/assets/uPlot.iife.min.js",
            get(|| {
                asset(
                    "text/javascript",
                    include_str!("../assets/vendor/uPlot.iife.min.js"),
                )
            }),
        )
        .route(
            "/assets/uPlot.min.css",
            get(|| asset("text/css", include_str!("../assets/vendor/uPlot.min.css"))),
        );
    protected
        .merge(assets)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(shared)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Bearer-token check; the dashboard page alone may carry the token as `?token=`.
async fn auth(State(s): AppState, request: Request, next: Next) -> Response {
    let Some(expected) = &s.auth_token else {
        return next.run(request).await;
    };
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let in_query = (request.uri().path() == "/")
        .then(|| request.uri().query())
        .flatten()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
    if bearer
        .or(in_query)
        .is_some_and(|given| same_secret(given.as_bytes(), expected.as_bytes()))
    {
        return next.run(request).await;
    }
    let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
    (
        StatusCode::UNAUTHORIZED,
        challenge,
        Json(json!({ "error": "missing or wrong bearer token" })),
    )
        .into_response()
}

/// Compares without an early exit, so timing does not reveal a matching prefix.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn count_requests(State(s): AppState, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(request).await;
    s.metrics
        .record_http(&method, &route, response.status().as_u16());
    response
}

/// Runs blocking work (log appends may fsync, job creation writes files) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServerError::io("request worker", std::io::Error::other(e.to_string())))?
}

async fn dashboard() -> Response {
    let page = include_str!("../assets/index.html");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

async fn list_streams(State(s): AppState) -> Json<Value> {
    let now_ms = crate::jobs::now_ms();
    let streams: Vec<Value> = s
        .log
        .streams()
        .into_iter()
        .map(|info| {
            let ends: Vec<u64> = info.partitions.iter().map(|p| p.end_offset).collect();
            let retained: u64 = info
                .partitions
                .iter()
                .map(|p| p.end_offset - p.start_offset.min(p.end_offset))
                .sum();
            json!({
                "name": info.name,
                "partitions": info.partitions.len(),
                "end_offsets": ends,
                "events": retained,
                "bytes": info.partitions.iter().map(|p| p.bytes).sum::<u64>(),
                "rate": s.metrics.rate(&info.name, now_ms),
            })
        })
        .collect();
    Json(Value::Array(streams))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateStream {
    partitions: Option<u32>,
}

async fn create_stream(
    State(s): AppState,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let request: CreateStream = if body.iter().all(u8::is_ascii_whitespace) {
        CreateStream { partitions: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ServerError::Invalid(format!("bad stream request: {e}")))?
    };
    let partitions = request.partitions;
    if partitions == Some(0) {
        return Err(ServerError::Invalid("partitions must be at least 1".into()));
    }
    blocking(move || {
        if let Some(existing) = s.log.stream(&name) {
            let have = existing.partitions.len() as u32;
            return match partitions {
                Some(want) if want != have => Err(ServerError::StreamConflict {
                    name: existing.name,
                    partitions: have,
                }),
                _ => Ok((
                    StatusCode::OK,
                    Json(json!({ "name": existing.name, "partitions": have })),
                )
                    .into_response()),
            };
        }
        let info = match partitions {
            Some(n) => s.log.create_stream(&name, n)?,
            None => s.log.get_or_create_stream(&name)?,
        };
        let body = json!({ "name": info.name, "partitions": info.partitions.len() });
        Ok((StatusCode::CREATED, Json(body)).into_response())
    })
    .await
}

#[derive(Deserialize)]
struct EventsQuery {
    key: Option<String>,
}

async fn post_events(
    State(s): AppState,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
    body: Bytes,
) -> Result<Json<Value>, ServerError> {
    let accepted = blocking(move || {
        let events = eddy_connectors::ndjson::split_events(&body)?;
        crate::ingest::append_events(
            &s.log,
            &s.metrics,
            &s.round_robin,
            &name,
            &events,
            q.key.as_deref(),
        )
    })
    .await?;
    Ok(Json(json!({ "accepted": accepted })))
}

async fn create_job(State(s): AppState, body: Bytes) -> Result<Response, ServerError> {
    let spec: JobSpec = serde_json::from_slice(&body)
        .map_err(|e| ServerError::Invalid(format!("bad job spec: {e}")))?;
    let name = spec.name.clone();
    blocking(move || s.jobs.create(spec)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name }))).into_response())
}

async fn list_jobs(State(s): AppState) -> Json<Value> {
    let now = eddy_engine::time::now_ticks();
    Json(Value::Array(
        s.jobs.list().iter().map(|j| job_json(j, now)).collect(),
    ))
}

async fn get_job(State(s): AppState, Path(name): Path<String>) -> Result<Json<Value>, ServerError> {
    let job = s.jobs.get(&name).ok_or(ServerError::JobNotFound(name))?;
    Ok(Json(job_json(&job, eddy_engine::time::now_ticks())))
}

async fn delete_job(
    State(s): AppState,
    Path(name): Path<String>,
) -> Result<StatusCode, ServerError> {
    blocking(move || s.jobs.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn job_json(job: &JobView, now_ticks: i64) -> Value {
    let (spec, status, m) = (&job.spec, &job.status, &job.status.metrics);
    let outputs: serde_json::Map<String, Value> = status
        .outputs
        .iter()
        .map(|(alias, sink)| (alias.clone(), Value::String(sink.clone())))
        .collect();
    json!({
        "name": spec.name,
        "query": spec.query,
        "state": status.state,
        "error": status.error,
        "late_arrival_tolerance_s": spec.late_arrival_tolerance_s,
        "out_of_order_tolerance_s": spec.out_of_order_tolerance_s,
        "out_of_order_action": spec.out_of_order_action,
        "inputs": status.inputs,
        "outputs": outputs,
        "references": spec.references,
        "metrics": {
            "input": m.input, "output": m.output, "late": m.late, "early": m.early,
            "out_of_order": m.out_of_order, "adjusted": m.adjusted, "dropped": m.dropped, "errors": m.errors,
            "join_buffered_rows": m.join_buffered_rows,
            "watermark": m.watermark.map(eddy_engine::time::format_datetime),
            "watermark_delay_s": m.watermark.map(|w| (now_ticks - w) as f64 / 1e7),
            "lag": status.lag,
        },
    })
}

#[derive(Deserialize)]
struct QueryRequest {
    sql: String,
}

async fn query(State(s): AppState, body: Bytes) -> Response {
    let request: QueryRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return ServerError::Invalid(format!("expected {{\"sql\": \"...\"}}: {e}"))
                .into_response();
        }
    };
    match s.store.query(&request.sql).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn tables(State(s): AppState) -> Json<Value> {
    Json(serde_json::to_value(s.store.tables()).unwrap_or(Value::Array(Vec::new())))
}

async fn metrics(State(s): AppState) -> Response {
    let text = s
        .metrics
        .render(&s.jobs.list(), eddy_engine::time::now_ticks());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
