//! `eddy query`: SQL over the tables of a running server (HTTP) or of a data directory.

use crate::table::{Format, ResultSet};
use crate::{Exit, usage_error};
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `eddy query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL (DataFusion dialect) to run over the tables.
    sql: String,
    /// A running server's URL.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        conflicts_with = "data_dir"
    )]
    server: String,
    /// Read the tables of this data directory directly (the server may be stopped).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Bearer token of a server started with --auth-token.
    #[arg(long)]
    auth_token: Option<String>,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn query(args: QueryArgs) -> anyhow::Result<()> {
    let result = match &args.data_dir {
        Some(dir) => query_dir(dir, &args.sql)?,
        None => query_server(&args.server, args.auth_token.as_deref(), &args.sql)?,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(result.render(args.format).as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn query_dir(data_dir: &std::path::Path, sql: &str) -> anyhow::Result<ResultSet> {
    let store_dir = data_dir.join("store");
    let store = eddy_store::Store::open_read_only(&store_dir)
        .with_context(|| format!("opening the tables of {}", data_dir.display()))?;
    let result = crate::runtime()?
        .block_on(store.query(sql))
        .map_err(usage_error)?;
    Ok(ResultSet {
        columns: result.columns,
        rows: result.rows,
    })
}

/// Posts the SQL to the server; a refused query (4xx) is a usage error with its message.
fn query_server(server: &str, auth_token: Option<&str>, sql: &str) -> anyhow::Result<ResultSet> {
    post_query(&agent(), server, auth_token, sql)?.map_err(|refusal| {
        eprintln!("error: {}", refusal.message);
        Exit(if refusal.client_error { 2 } else { 1 }).into()
    })
}

/// An HTTP client for eddy's API: error statuses are answers to read, not failures.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// A query the server answered with an error status.
pub struct Refusal {
    /// A 4xx status: the query itself is wrong.
    pub client_error: bool,
    /// The server's `error` message.
    pub message: String,
}

/// Posts `sql` to `POST /api/query`; the inner error is the server's refusal.
pub fn post_query(
    agent: &ureq::Agent,
    server: &str,
    auth_token: Option<&str>,
    sql: &str,
) -> anyhow::Result<Result<ResultSet, Refusal>> {
    let url = format!("{}/api/query", server.trim_end_matches('/'));
    let mut request = agent.post(&url);
    if let Some(token) = auth_token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request
        .send_json(serde_json::json!({ "sql": sql }))
        .with_context(|| format!("posting to {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .body_mut()
        .with_config()
        .limit(RESULT_BYTES_MAX)
        .read_json()
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let message = body["error"]
            .as_str()
            .map_or_else(|| body.to_string(), str::to_string);
        return Ok(Err(Refusal {
            client_error: status.is_client_error(),
            message,
        }));
    }
    Ok(Ok(serde_json::from_value(body).with_context(|| {
        format!("unexpected answer from {url}")
    })?))
}

/// Largest query answer we read, to bound memory.
const RESULT_BYTES_MAX: u64 = 1 << 30;
