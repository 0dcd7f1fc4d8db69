//! `eddy topics`, `eddy produce` and `eddy consume`: the Kafka-style operations on a
//! running server's streams (topics are streams), over its HTTP API.

use crate::{Exit, usage_error};
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the server is and how to authenticate, shared by the three commands.
#[derive(Debug, Args)]
pub struct Connection {
    /// A running server's URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Bearer token of a server started with --auth-token.
    #[arg(long, global = true)]
    auth_token: Option<String>,
}

/// Options of `eddy topics`.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(subcommand)]
    command: TopicsCommand,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// List topics with partitions, events retained and bytes.
    List,
    /// Create a topic (an error if it exists with another partition count).
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// Payload format producers write: json, csv or avro (container file).
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Show a topic's partitions (offset ranges) and its consumer groups' lag.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete a topic, its events and its groups' offsets.
    Delete {
        /// Topic name.
        name: String,
    },
}

/// Options of `eddy produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic to append to (created on first use).
    topic: String,
    /// NDJSON file to send; standard input when absent.
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// Partitioning key of every event (events without one are spread round-robin).
    #[arg(long)]
    key: Option<String>,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    #[command(flatten)]
    connection: Connection,
}

/// Options of `eddy consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    topic: String,
    /// Consumer group: start from its committed offsets and commit what was printed.
    #[arg(long)]
    group: Option<String>,
    /// Without a group's offset, start at the end instead of the beginning.
    #[arg(long)]
    from_end: bool,
    /// Stop after this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Stop once no event arrived for this many milliseconds (0: stop at the end).
    #[arg(long, default_value_t = 0)]
    idle_timeout_ms: u64,
    /// Print each event with its partition, offset, key and headers instead of its value.
    #[arg(long)]
    metadata: bool,
    #[command(flatten)]
    connection: Connection,
}

/// A thin client of the server's HTTP API that turns refusals into usage errors.
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(connection: &Connection) -> Client {
        Client::to(&connection.server, connection.auth_token.clone())
    }

    /// A client of the server at `server` (its URL), sending `token` as a bearer token.
    pub(crate) fn to(server: &str, token: Option<String>) -> Client {
        Client {
            agent: crate::query::agent(),
            base: server.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// Sends a request; a 4xx answer is printed as a usage error (exit 2), a 5xx as a failure.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => with_auth(self.agent.get(&url), auth.as_deref()).call(),
            ("DELETE", _) => with_auth(self.agent.delete(&url), auth.as_deref()).call(),
            ("PUT", body) => {
                with_auth(self.agent.put(&url), auth.as_deref()).send(body.unwrap_or_default())
            }
            (_, body) => {
                with_auth(self.agent.post(&url), auth.as_deref()).send(body.unwrap_or_default())
            }
        };
        let mut response = result.with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let body: Value = response
            .body_mut()
            .read_json()
            .with_context(|| format!("reading the answer of {method} {url}"))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]
            .as_str()
            .map_or_else(|| body.to_string(), str::to_string);
        eprintln!("error: {message}");
        Err(Exit(if status.is_client_error() { 2 } else { 1 }).into())
    }
}

fn with_auth<B>(request: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(value) => request.header("authorization", value),
        None => request,
    }
}

/// Percent-encodes a path segment or query value (names may hold any character).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn topics(args: TopicsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection);
    let mut out = std::io::stdout().lock();
    match args.command {
        TopicsCommand::List => {
            let streams = client.call("GET", "/api/streams", None)?;
            writeln!(
                out,
                "{:<32} {:>10} {:>12} {:>14}",
                "TOPIC", "PARTITIONS", "EVENTS", "BYTES"
            )?;
            for s in streams.as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "{:<32} {:>10} {:>12} {:>14}",
                    s["name"].as_str().unwrap_or_default(),
                    s["partitions"],
                    s["events"],
                    s["bytes"]
                )?;
            }
        }
        TopicsCommand::Create {
            name,
            partitions,
            format,
        } => {
            let body = json!({ "partitions": partitions, "format": format })
                .to_string()
                .into_bytes();
            let made = client.call(
                "PUT",
                &format!("/api/streams/{}", encode(&name)),
                Some(body),
            )?;
            writeln!(
                out,
                "topic {} has {} partitions ({} payloads)",
                made["name"].as_str().unwrap_or(&name),
                made["partitions"],
                made["format"].as_str().unwrap_or("json")
            )?;
        }
        TopicsCommand::Describe { name } => {
            let d = client.call("GET", &format!("/api/streams/{}", encode(&name)), None)?;
            writeln!(out, "topic {}", d["name"].as_str().unwrap_or(&name))?;
            writeln!(
                out,
                "{:>9} {:>12} {:>12} {:>14}",
                "PARTITION", "START", "END", "BYTES"
            )?;
            for p in d["partitions"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "{:>9} {:>12} {:>12} {:>14}",
                    p["partition"], p["start_offset"], p["end_offset"], p["bytes"]
                )?;
            }
            let groups = d["groups"].as_array().cloned().unwrap_or_default();
            if !groups.is_empty() {
                writeln!(
                    out,
                    "{:<24} {:>9} {:>12} {:>12} {:>10}",
                    "GROUP", "PARTITION", "COMMITTED", "END", "LAG"
                )?;
                for g in groups {
                    writeln!(
                        out,
                        "{:<24} {:>9} {:>12} {:>12} {:>10}",
                        g["group"].as_str().unwrap_or_default(),
                        g["partition"],
                        g["offset"],
                        g["end_offset"],
                        g["lag"]
                    )?;
                }
            }
        }
        TopicsCommand::Delete { name } => {
            client.call("DELETE", &format!("/api/streams/{}", encode(&name)), None)?;
            writeln!(out, "deleted topic {name}")?;
        }
    }
    Ok(())
}

pub fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection);
    let reader: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut path = format!("/api/streams/{}/events", encode(&args.topic));
    if let Some(key) = &args.key {
        path.push_str(&format!("?key={}", encode(key)));
    }
    let batch = args.batch.max(1);
    let (mut body, mut pending, mut sent, mut line_no) = (Vec::new(), 0usize, 0u64, 0u64);
    let flush = |body: &mut Vec<u8>, pending: &mut usize, first_line: u64| -> anyhow::Result<u64> {
        if *pending == 0 {
            return Ok(0);
        }
        let answer = client.call("POST", &path, Some(std::mem::take(body))).inspect_err(|_| {
            eprintln!("error: the batch starting at input line {first_line} was not accepted; earlier lines were");
        })?;
        *pending = 0;
        Ok(answer["accepted"].as_u64().unwrap_or(0))
    };
    let mut batch_first_line = 1;
    for line in reader.lines() {
        let line = line.context("reading events")?;
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        if pending == 0 {
            batch_first_line = line_no;
        }
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
        pending += 1;
        if pending >= batch {
            sent += flush(&mut body, &mut pending, batch_first_line)?;
        }
    }
    sent += flush(&mut body, &mut pending, batch_first_line)?;
    eprintln!("produced {sent} events to {}", args.topic);
    Ok(())
}

pub fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection);
    let topic = encode(&args.topic);
    let described = client.call("GET", &format!("/api/streams/{topic}"), None)?;
    let partitions = described["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let committed = |p: u64| -> Option<u64> {
        let group = args.group.as_deref()?;
        described["groups"].as_array()?.iter().find_map(|g| {
            (g["group"] == group && g["partition"] == p)
                .then(|| g["offset"].as_u64())
                .flatten()
        })
    };
    let mut positions: Vec<u64> = partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let start = if args.from_end {
                &p["end_offset"]
            } else {
                &p["start_offset"]
            };
            committed(i as u64).unwrap_or_else(|| start.as_u64().unwrap_or(0))
        })
        .collect();
    if positions.is_empty() {
        return Err(usage_error(format!(
            "topic {} has no partitions",
            args.topic
        )));
    }
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut last_event = Instant::now();
    let limit = args.max_events.unwrap_or(u64::MAX);
    loop {
        let mut got_any = false;
        for (partition, position) in positions.iter_mut().enumerate() {
            let want = (limit - printed).min(1000);
            let wait = if args.idle_timeout_ms > 0 { 100 } else { 0 };
            let read = client.call(
                "GET",
                &format!("/api/streams/{topic}/events?partition={partition}&offset={position}&max={want}&wait_ms={wait}"),
                None,
            )?;
            let events = read["events"].as_array().cloned().unwrap_or_default();
            for event in &events {
                let line = if args.metadata {
                    event.to_string()
                } else {
                    event["value"].to_string()
                };
                writeln!(out, "{line}")?;
            }
            if !events.is_empty() {
                got_any = true;
                printed += events.len() as u64;
                *position = read["next_offset"].as_u64().unwrap_or(*position);
                out.flush()?;
                if let Some(group) = &args.group {
                    let body = json!({ "stream": args.topic, "partition": partition, "offset": *position });
                    client.call(
                        "PUT",
                        &format!("/api/groups/{}/offsets", encode(group)),
                        Some(body.to_string().into_bytes()),
                    )?;
                }
            }
            if printed >= limit {
                return Ok(());
            }
        }
        if got_any {
            last_event = Instant::now();
        } else if last_event.elapsed() >= Duration::from_millis(args.idle_timeout_ms) {
            return Ok(());
        }
    }
}
