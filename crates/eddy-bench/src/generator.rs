//! Nexmark events from the `nexmark` crate, with a fixed start time and rate so every run
//! (and every engine) sees the same events: written as NDJSON, one directory per kind
//! (`person/`, `auction/`, `bid/`, each with `part-0.ndjson`), or built in memory.
//!
//! Each JSON object starts with `dateTime` (ISO-8601 UTC, milliseconds), so readers can
//! merge the three files by event time from a fixed-width prefix.

use crate::error::BenchError;
use eddy_engine::time::format_datetime;
use eddy_engine::{Record, Value};
use nexmark::EventGenerator;
use nexmark::config::NexmarkConfig;
use nexmark::event::Event;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The three Nexmark event kinds, each an eddy input of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A new user (`person`).
    Person,
    /// A new auction (`auction`).
    Auction,
    /// A bid on an auction (`bid`).
    Bid,
}

impl Kind {
    /// Every kind, in file order.
    pub const ALL: [Kind; 3] = [Kind::Person, Kind::Auction, Kind::Bid];

    /// The input, stream and directory name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Auction => "auction",
            Kind::Bid => "bid",
        }
    }

    /// The kind an input name refers to (case-insensitive, as ASA names are).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The NDJSON file of this kind under a generated directory.
    pub fn file(self, dir: &Path) -> PathBuf {
        dir.join(self.name()).join("part-0.ndjson")
    }

    fn of(event: &Event) -> Kind {
        match event {
            Event::Person(_) => Kind::Person,
            Event::Auction(_) => Kind::Auction,
            Event::Bid(_) => Kind::Bid,
        }
    }
}

/// What to generate; the defaults are the standard Nexmark mix (1:3:46) at 10 000 events
/// per second of event time, starting 2024-01-01T00:00:00Z.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Number of events of all kinds.
    pub events: u64,
    /// Event-time rate: events per second of `dateTime`.
    pub events_per_second: u64,
    /// `dateTime` of the first event, in milliseconds since the Unix epoch.
    pub base_time_ms: u64,
}

impl Default for GenOptions {
    fn default() -> GenOptions {
        GenOptions {
            events: 1_000_000,
            events_per_second: 10_000,
            base_time_ms: 1_704_067_200_000,
        }
    }
}

/// How many events of each kind were written, and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Person events.
    pub persons: u64,
    /// Auction events.
    pub auctions: u64,
    /// Bid events.
    pub bids: u64,
    /// NDJSON bytes, newlines included.
    pub bytes: u64,
}

impl GenSummary {
    /// Events of one kind.
    pub fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Person => self.persons,
            Kind::Auction => self.auctions,
            Kind::Bid => self.bids,
        }
    }

    fn add(&mut self, kind: Kind, bytes: usize) {
        match kind {
            Kind::Person => self.persons += 1,
            Kind::Auction => self.auctions += 1,
            Kind::Bid => self.bids += 1,
        }
        self.bytes += bytes as u64 + 1;
    }
}

/// The events, in event-time order; `nexmark`'s `EventGenerator::default()` repeats one
/// event forever, so the generator is always built from a config.
pub fn events(options: &GenOptions) -> impl Iterator<Item = Event> + use<> {
    let rate = options.events_per_second.max(1) as usize;
    let config = NexmarkConfig {
        base_time: options.base_time_ms,
        first_rate: rate,
        next_rate: rate,
        ..NexmarkConfig::default()
    };
    EventGenerator::new(config).take(options.events as usize)
}

/// ISO-8601 UTC with milliseconds, e.g. `2024-01-01T00:00:00.123Z`.
fn iso_ms(ms: u64) -> String {
    let full = format_datetime(ms as i64 * 10_000);
    format!("{}Z", &full[..23])
}

fn field_str(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    // Serialising a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn field_int(out: &mut Vec<u8>, name: &str, value: usize) {
    out.extend_from_slice(format!(",\"{name}\":{value}").as_bytes());
}

/// Appends one event as a JSON object (no newline) and returns its kind; field names
/// are the camelCase ones of the Nexmark papers and of Flink's Nexmark suite.
pub fn write_json(event: &Event, out: &mut Vec<u8>) -> Kind {
    out.extend_from_slice(format!("{{\"dateTime\":\"{}\"", iso_ms(event.timestamp())).as_bytes());
    match event {
        Event::Person(p) => {
            field_int(out, "id", p.id);
            field_str(out, "name", &p.name);
            field_str(out, "emailAddress", &p.email_address);
            field_str(out, "creditCard", &p.credit_card);
            field_str(out, "city", &p.city);
            field_str(out, "state", &p.state);
            field_str(out, "extra", &p.extra);
        }
        Event::Auction(a) => {
            field_int(out, "id", a.id);
            field_str(out, "itemName", &a.item_name);
            field_str(out, "description", &a.description);
            field_int(out, "initialBid", a.initial_bid);
            field_int(out, "reserve", a.reserve);
            field_str(out, "expires", &iso_ms(a.expires));
            field_int(out, "seller", a.seller);
            field_int(out, "category", a.category);
            field_str(out, "extra", &a.extra);
        }
        Event::Bid(b) => {
            field_int(out, "auction", b.auction);
            field_int(out, "bidder", b.bidder);
            field_int(out, "price", b.price);
            field_str(out, "channel", &b.channel);
            field_str(out, "url", &b.url);
            field_str(out, "extra", &b.extra);
        }
    }
    out.push(b'}');
    Kind::of(event)
}

/// Calls `sink` with each event's kind and JSON text, in event-time order: the feed for
/// NDJSON files and for eddy streams (`eddy bench gen nexmark`).
pub fn generate<E>(
    options: &GenOptions,
    mut sink: impl FnMut(Kind, &[u8]) -> Result<(), E>,
) -> Result<GenSummary, E> {
    let mut summary = GenSummary::default();
    let mut buf = Vec::with_capacity(1024);
    for event in events(options) {
        buf.clear();
        let kind = write_json(&event, &mut buf);
        sink(kind, &buf)?;
        summary.add(kind, buf.len());
    }
    Ok(summary)
}

/// Writes `dir/{person,auction,bid}/part-0.ndjson` (replacing earlier files).
pub fn write_ndjson(options: &GenOptions, dir: &Path) -> Result<GenSummary, BenchError> {
    let mut writers = Vec::with_capacity(3);
    for kind in Kind::ALL {
        let path = kind.file(dir);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(BenchError::io(parent))?;
        }
        let file = File::create(&path).map_err(BenchError::io(&path))?;
        writers.push((path, BufWriter::with_capacity(1 << 20, file)));
    }
    let index = |k: Kind| Kind::ALL.iter().position(|&x| x == k).unwrap_or(0);
    let summary = generate(options, |kind, json| {
        let (path, w) = &mut writers[index(kind)];
        w.write_all(json)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(BenchError::io(path.as_path()))
    })?;
    for (path, mut w) in writers {
        w.flush().map_err(BenchError::io(path))?;
    }
    tracing::info!(?summary, dir = %dir.display(), "wrote Nexmark NDJSON");
    Ok(summary)
}

/// Field names shared by every in-memory record of one kind.
#[derive(Debug, Clone)]
pub struct RecordShapes {
    person: Arc<[Arc<str>]>,
    auction: Arc<[Arc<str>]>,
    bid: Arc<[Arc<str>]>,
}

fn names(list: &[&str]) -> Arc<[Arc<str>]> {
    list.iter().map(|&n| Arc::from(n)).collect()
}

impl Default for RecordShapes {
    fn default() -> RecordShapes {
        RecordShapes {
            person: names(&[
                "dateTime",
                "id",
                "name",
                "emailAddress",
                "creditCard",
                "city",
                "state",
                "extra",
            ]),
            auction: names(&[
                "dateTime",
                "id",
                "itemName",
                "description",
                "initialBid",
                "reserve",
                "expires",
                "seller",
                "category",
                "extra",
            ]),
            bid: names(&[
                "dateTime", "auction", "bidder", "price", "channel", "url", "extra",
            ]),
        }
    }
}

fn ticks(ms: u64) -> Value {
    Value::DateTime(ms as i64 * 10_000)
}

fn int(v: usize) -> Value {
    Value::BigInt(v as i64)
}

fn text(s: &str) -> Value {
    Value::String(Arc::from(s))
}

/// One event as an engine record (datetimes already typed), for the engine-only numbers
/// that leave JSON decoding out.
pub fn to_record(event: &Event, shapes: &RecordShapes) -> (Kind, Value) {
    let (names, values) = match event {
        Event::Person(p) => (
            &shapes.person,
            vec![
                ticks(p.date_time),
                int(p.id),
                text(&p.name),
                text(&p.email_address),
                text(&p.credit_card),
                text(&p.city),
                text(&p.state),
                text(&p.extra),
            ],
        ),
        Event::Auction(a) => (
            &shapes.auction,
            vec![
                ticks(a.date_time),
                int(a.id),
                text(&a.item_name),
                text(&a.description),
                int(a.initial_bid),
                int(a.reserve),
                ticks(a.expires),
                int(a.seller),
                int(a.category),
                text(&a.extra),
            ],
        ),
        Event::Bid(b) => (
            &shapes.bid,
            vec![
                ticks(b.date_time),
                int(b.auction),
                int(b.bidder),
                int(b.price),
                text(&b.channel),
                text(&b.url),
                text(&b.extra),
            ],
        ),
    };
    (
        Kind::of(event),
        Value::Record(Arc::new(Record::new(names.clone(), values))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_engine::time::parse_datetime;

    fn lines(options: &GenOptions) -> Vec<(Kind, String)> {
        let mut out = Vec::new();
        generate(options, |kind, json| {
            out.push((kind, String::from_utf8_lossy(json).into_owned()));
            Ok::<(), ()>(())
        })
        .expect("infallible sink");
        out
    }

    #[test]
    fn same_options_give_the_same_events_in_the_nexmark_mix() {
        let options = GenOptions {
            events: 500,
            ..GenOptions::default()
        };
        let a = lines(&options);
        assert_eq!(a, lines(&options));
        let count = |k| a.iter().filter(|(x, _)| *x == k).count();
        assert_eq!(
            (count(Kind::Person), count(Kind::Auction), count(Kind::Bid)),
            (10, 30, 460)
        );
        let distinct: std::collections::HashSet<&String> = a.iter().map(|(_, l)| l).collect();
        assert_eq!(distinct.len(), a.len(), "the generator repeats events");
    }

    #[test]
    fn events_are_json_with_iso_event_time_first_in_order() {
        let options = GenOptions {
            events: 200,
            events_per_second: 100,
            ..GenOptions::default()
        };
        let mut last = i64::MIN;
        for (i, (kind, line)) in lines(&options).iter().enumerate() {
            assert!(line.starts_with("{\"dateTime\":\""), "{line}");
            let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
            let time = v["dateTime"]
                .as_str()
                .and_then(parse_datetime)
                .expect("ISO-8601");
            assert!(time >= last, "event {i} goes back in time");
            last = time;
            let key = match kind {
                Kind::Person => "emailAddress",
                Kind::Auction => "seller",
                Kind::Bid => "price",
            };
            assert!(v.get(key).is_some(), "{kind:?} without {key}: {line}");
        }
        // 200 events at 100 per second span two seconds from 2024-01-01T00:00:00Z.
        let base = parse_datetime("2024-01-01T00:00:00Z").expect("datetime");
        assert!(last >= base + 19_000_000 && last < base + 20_000_000);
    }

    #[test]
    fn records_carry_the_same_fields_as_the_json() {
        let shapes = RecordShapes::default();
        for event in events(&GenOptions {
            events: 50,
            ..GenOptions::default()
        }) {
            let mut json = Vec::new();
            write_json(&event, &mut json);
            let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
            let (_, record) = to_record(&event, &shapes);
            let Value::Record(r) = record else {
                panic!("not a record")
            };
            let names: Vec<&str> = r.fields().map(|(n, _)| n).collect();
            let keys: Vec<&str> = v
                .as_object()
                .expect("object")
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(names, keys);
        }
    }
}
