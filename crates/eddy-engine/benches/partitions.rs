//! `cargo bench -p eddy-engine --bench partitions`: a `PARTITION BY PartitionId` query
//! over several input partitions, on one thread and on several, in one run.

fn main() {
    let events: usize = std::env::var("EDDY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6_000_000);
    let partitions: u32 = std::env::var("EDDY_BENCH_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let threads: usize = std::env::var("EDDY_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    const KEYS: usize = 100_000;
    const PER_SECOND: i64 = 100_000;
    for window in ["TumblingWindow(second, 60)", "SlidingWindow(second, 60)"] {
        for round in 1..=3 {
            let run = |t| {
                eddy_engine::bench::bench_partitioned(
                    events, KEYS, partitions, t, PER_SECOND, window,
                )
            };
            let (one, many) = (run(1), run(threads));
            println!(
                "{window} round {round}: {partitions} partitions, 1 thread {:.0} events/s, \
                 {threads} threads {:.0} events/s ({} rows), speed-up {:.2}",
                one.events_per_second,
                many.events_per_second,
                many.rows,
                many.events_per_second / one.events_per_second,
            );
        }
    }
}
