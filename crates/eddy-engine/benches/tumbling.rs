//! `cargo bench -p eddy-engine`: throughput of a tumbling-window count.

fn main() {
    let eps = eddy_engine::bench::bench_tumbling_count(2_000_000, 1000);
    println!("tumbling count, push_record: {eps:.0} events/s");
    let eps = eddy_engine::bench::bench_json_tumbling_count(1_000_000, 1000);
    println!("tumbling count, push_json:   {eps:.0} events/s");
}
