//! `cargo bench -p eddy-engine`: throughput of a tumbling-window count, beside a
//! hand-written hash-map count over the same records measured in the same run.

fn main() {
    const EVENTS: usize = 2_000_000;
    const KEYS: usize = 1000;
    for round in 1..=3 {
        let engine = eddy_engine::bench::bench_tumbling_count(EVENTS, KEYS);
        let handwritten = eddy_engine::bench::bench_handwritten_tumbling_count(EVENTS, KEYS);
        let json = eddy_engine::bench::bench_json_tumbling_count(EVENTS / 2, KEYS);
        println!(
            "round {round}: push_record {engine:.0} events/s, push_json {json:.0} events/s, \
             hand-written {handwritten:.0} events/s, engine/hand-written {:.2}",
            engine / handwritten
        );
    }
}
