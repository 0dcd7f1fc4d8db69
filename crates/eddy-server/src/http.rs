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
use eddy_connectors::formats::EventFormat;

/// Largest request body: bigger ingest batches answer 413.
const BODY_BYTES_MAX: usize = 32 * 1024 * 1024;

type AppState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let protected = Router::new()
        .route("/", get(dashboard))
        .route("/api/streams", get(list_streams))
        .route(
            "/api/streams/{name}",
            get(describe_stream)
                .put(create_stream)
                .delete(delete_stream),
        )
        .route(
            "/api/streams/{name}/events",
            get(read_events).post(post_events),
        )
        .route("/api/groups", get(list_groups))
        .route(
            "/api/groups/{group}/offsets",
            axum::routing::put(commit_group_offset),
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
                "format": stream_format(&info).name(),
            })
        })
        .collect();
    Json(Value::Array(streams))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateStream {
    partitions: Option<u32>,
    /// `json` (the default), `csv` or `avro`: how producers write the stream's payloads.
    format: Option<String>,
}

async fn create_stream(
    State(s): AppState,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let request: CreateStream = if body.iter().all(u8::is_ascii_whitespace) {
        CreateStream {
            partitions: None,
            format: None,
        }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ServerError::Invalid(format!("bad stream request: {e}")))?
    };
    let partitions = request.partitions;
    if partitions == Some(0) {
        return Err(ServerError::Invalid("partitions must be at least 1".into()));
    }
    let format = match &request.format {
        Some(f) => Some(
            f.parse::<EventFormat>()
                .map_err(|e| ServerError::Invalid(e.to_string()))?,
        ),
        None => None,
    };
    blocking(move || {
        if let Some(existing) = s.log.stream(&name) {
            let have = existing.partitions.len() as u32;
            let have_format = stream_format(&existing);
            return match (partitions, format) {
                (Some(want), _) if want != have => Err(ServerError::StreamConflict {
                    name: existing.name,
                    partitions: have,
                }),
                (_, Some(want)) if want != have_format => Err(ServerError::Invalid(format!(
                    "stream {} already exists with format {have_format}",
                    existing.name
                ))),
                _ => Ok((
                    StatusCode::OK,
                    Json(json!({ "name": existing.name, "partitions": have, "format": have_format.name() })),
                )
                    .into_response()),
            };
        }
        let info = match (partitions, format) {
            (None, None) => s.log.get_or_create_stream(&name)?,
            (n, f) => s.log.create_stream_with_format(
                &name,
                n.unwrap_or(s.log.config().default_partitions),
                f.map(EventFormat::name),
            )?,
        };
        let body = json!({
            "name": info.name,
            "partitions": info.partitions.len(),
            "format": stream_format(&info).name(),
        });
        Ok((StatusCode::CREATED, Json(body)).into_response())
    })
    .await
}

/// The format a stream declared; JSON when it declared none (or one this build does not know).
pub(crate) fn stream_format(info: &eddy_log::StreamInfo) -> EventFormat {
    info.format
        .as_deref()
        .and_then(|f| f.parse().ok())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct EventsQuery {
    key: Option<String>,
    /// Overrides the stream's declared format for this request's body.
    format: Option<String>,
}

/// One group's position and lag in one partition.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct GroupLag {
    pub group: String,
    pub stream: String,
    pub partition: u32,
    pub offset: u64,
    pub end_offset: u64,
    pub lag: u64,
}

/// Lag of every committed group position: the partition's end offset minus the commit.
pub(crate) fn group_lags(log: &eddy_log::Log) -> Vec<GroupLag> {
    log.committed_offsets()
        .into_iter()
        .filter_map(|g| {
            let info = log.stream(&g.stream)?;
            let end_offset = info.partitions.get(g.partition as usize)?.end_offset;
            Some(GroupLag {
                lag: end_offset.saturating_sub(g.offset),
                end_offset,
                group: g.group,
                stream: g.stream,
                partition: g.partition,
                offset: g.offset,
            })
        })
        .collect()
}

async fn describe_stream(
    State(s): AppState,
    Path(name): Path<String>,
) -> Result<Json<Value>, ServerError> {
    let info = s
        .log
        .stream(&name)
        .ok_or_else(|| ServerError::Log(eddy_log::LogError::UnknownStream(name.clone())))?;
    let partitions: Vec<Value> = info
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "start_offset": p.start_offset,
                "end_offset": p.end_offset,
                "bytes": p.bytes,
            })
        })
        .collect();
    let groups: Vec<GroupLag> = group_lags(&s.log)
        .into_iter()
        .filter(|g| g.stream == info.name)
        .collect();
    Ok(Json(json!({
        "name": info.name,
        "format": stream_format(&info).name(),
        "partitions": partitions,
        "groups": groups,
    })))
}

async fn delete_stream(
    State(s): AppState,
    Path(name): Path<String>,
) -> Result<Json<Value>, ServerError> {
    blocking(move || {
        s.log.delete_stream(&name)?;
        Ok(Json(json!({ "deleted": name })))
    })
    .await
}

#[derive(Deserialize)]
struct ReadQuery {
    #[serde(default)]
    partition: u32,
    #[serde(default)]
    offset: u64,
    max: Option<usize>,
    /// Long poll: wait up to this long for a record when the partition has none left.
    wait_ms: Option<u64>,
}

/// Largest POST body appended on the request's own task rather than the blocking pool.
const INLINE_BODY_MAX: usize = 4 << 20;
/// Most records one read returns.
const READ_RECORDS_MAX: usize = 10_000;
/// Longest long poll of a read.
const READ_WAIT_MS_MAX: u64 = 30_000;

async fn read_events(
    State(s): AppState,
    Path(name): Path<String>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, ServerError> {
    let max = q.max.unwrap_or(1000).clamp(1, READ_RECORDS_MAX);
    let wait_ms = q.wait_ms.unwrap_or(0).min(READ_WAIT_MS_MAX);
    let log = s.log.clone();
    let mut end = log.subscribe(&name, q.partition)?;
    if wait_ms > 0 && *end.borrow() <= q.offset {
        let deadline = std::time::Duration::from_millis(wait_ms);
        let _ = tokio::time::timeout(deadline, end.wait_for(|e| *e > q.offset)).await;
    }
    // In place, as appends are: the records a reader waits for were just written and are in
    // the page cache.
    let records = log.read(&name, q.partition, q.offset, max)?;
    let body = events_body(q.partition, q.offset, &records);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The body of a read, written directly: a stored value that is JSON is copied as is (no
/// parse into a tree and back), anything else becomes a JSON string.
fn events_body(partition: u32, offset: u64, records: &[eddy_log::StoredRecord]) -> Vec<u8> {
    use std::io::Write;
    let text = |out: &mut Vec<u8>, bytes: &[u8]| {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(bytes));
    };
    let next_offset = records.last().map_or(offset, |r| r.offset + 1);
    let size: usize = records.iter().map(|r| r.value.len() + 96).sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(b"{\"events\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(
            out,
            "{{\"partition\":{partition},\"offset\":{},\"timestamp_ms\":{},\"key\":",
            r.offset, r.timestamp_ms
        );
        match &r.key {
            Some(k) => text(&mut out, k),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"headers\":{");
        for (j, (k, v)) in r.headers.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            text(&mut out, k.as_bytes());
            out.push(b':');
            text(&mut out, v);
        }
        out.extend_from_slice(b"},\"value\":");
        if serde_json::from_slice::<serde::de::IgnoredAny>(&r.value).is_ok() {
            out.extend_from_slice(r.value.trim_ascii());
        } else {
            text(&mut out, &r.value);
        }
        out.push(b'}');
    }
    let _ = write!(out, "],\"next_offset\":{next_offset}}}");
    out
}

async fn list_groups(State(s): AppState) -> Json<Value> {
    Json(json!(group_lags(&s.log)))
}

#[derive(Deserialize)]
struct CommitRequest {
    stream: String,
    partition: u32,
    offset: u64,
}

async fn commit_group_offset(
    State(s): AppState,
    Path(group): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ServerError> {
    let request: CommitRequest = serde_json::from_slice(&body)
        .map_err(|e| ServerError::Invalid(format!("bad commit request: {e}")))?;
    blocking(move || {
        s.log
            .commit_offset(&group, &request.stream, request.partition, request.offset)?;
        Ok(Json(json!({ "committed": request.offset })))
    })
    .await
}

async fn post_events(
    State(s): AppState,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
    body: Bytes,
) -> Result<Json<Value>, ServerError> {
    let requested = match &q.format {
        Some(f) => Some(
            f.parse::<EventFormat>()
                .map_err(|e| ServerError::Invalid(e.to_string()))?,
        ),
        None => None,
    };
    // Appending to an existing stream is a write into the page cache, microseconds: cheaper
    // in place than a hand-off to the blocking pool, which costs a thread wake-up (and on a
    // busy machine a scheduler slice) per request. Creating a stream or an fsync per append
    // still goes to the pool.
    let inline = !matches!(s.log.config().fsync, eddy_log::FsyncPolicy::Always)
        && body.len() <= INLINE_BODY_MAX
        && s.log.stream(&name).is_some();
    let append = move || {
        let format = requested
            .or_else(|| s.log.stream(&name).map(|info| stream_format(&info)))
            .unwrap_or_default();
        if format == EventFormat::Json {
            let events = eddy_connectors::ndjson::split_events(&body)?;
            return crate::ingest::append_events(
                &s.log,
                &s.metrics,
                &s.round_robin,
                &name,
                &events,
                q.key.as_deref(),
            );
        }
        // CSV and Avro bodies are checked whole, then kept as written: one record that the
        // jobs decode, as they decode the same payloads produced over Kafka.
        let events = eddy_connectors::formats::decode_payload(format, &body)
            .map_err(|e| ServerError::Invalid(e.to_string()))?;
        crate::ingest::append_payload(
            &s.log,
            &s.metrics,
            &s.round_robin,
            &name,
            body,
            format,
            events.len(),
            q.key.as_deref(),
        )
    };
    let accepted = if inline {
        append()?
    } else {
        blocking(append).await?
    };
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
    let mut text = s
        .metrics
        .render(&s.jobs.list(), eddy_engine::time::now_ticks());
    text.push_str(&crate::metrics::render_group_lag(&group_lags(&s.log)));
    text.push_str(&s.metrics.render_folders());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::events_body;
    use bytes::Bytes;
    use eddy_log::StoredRecord;
    use serde_json::json;

    fn record(offset: u64, key: Option<&str>, value: &[u8]) -> StoredRecord {
        StoredRecord {
            offset,
            timestamp_ms: 1_700_000_000_000,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Bytes::copy_from_slice(value),
            headers: vec![("trace \"id\"".into(), Bytes::from_static(b"a\nb"))],
        }
    }

    #[test]
    fn a_read_keeps_json_values_and_quotes_everything_else() {
        let records = [
            record(7, Some("dev\"1"), b" {\"t\": 21.5, \"s\": [1, \"x\"]}\n"),
            record(8, None, b"not json \xff"),
            record(9, None, b""),
        ];
        let body: serde_json::Value =
            serde_json::from_slice(&events_body(2, 7, &records)).expect("valid JSON");
        let headers = json!({ "trace \"id\"": "a\nb" });
        assert_eq!(
            body,
            json!({
                "events": [
                    { "partition": 2, "offset": 7, "timestamp_ms": 1_700_000_000_000_i64,
                      "key": "dev\"1", "headers": headers, "value": { "t": 21.5, "s": [1, "x"] } },
                    { "partition": 2, "offset": 8, "timestamp_ms": 1_700_000_000_000_i64,
                      "key": null, "headers": headers, "value": "not json \u{fffd}" },
                    { "partition": 2, "offset": 9, "timestamp_ms": 1_700_000_000_000_i64,
                      "key": null, "headers": headers, "value": "" },
                ],
                "next_offset": 10,
            })
        );
        let empty: serde_json::Value =
            serde_json::from_slice(&events_body(0, 42, &[])).expect("valid JSON");
        assert_eq!(empty, json!({ "events": [], "next_offset": 42 }));
    }
}
