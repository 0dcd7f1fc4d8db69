//! `cargo bench -p eddy-engine --bench windows`: hopping and sliding windows against a
//! tumbling window on the same events over 100 K keys, with the ratios of one run.

fn main() {
    let events: usize = std::env::var("EDDY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12_000_000);
    const KEYS: usize = 100_000;
    const PER_SECOND: i64 = 100_000;
    for round in 1..=3 {
        let f = eddy_engine::bench::bench_window_kinds(events, KEYS, PER_SECOND);
        println!(
            "round {round}: tumbling {:.0} events/s ({} rows), hopping {:.0} events/s ({} rows), \
             sliding {:.0} events/s ({} rows), hopping/tumbling {:.2}, sliding/tumbling {:.2}",
            f.tumbling.events_per_second,
            f.tumbling.rows,
            f.hopping.events_per_second,
            f.hopping.rows,
            f.sliding.events_per_second,
            f.sliding.rows,
            f.hopping.events_per_second / f.tumbling.events_per_second,
            f.sliding.events_per_second / f.tumbling.events_per_second,
        );
    }
}
