//! A road-traffic generator for the demo: sensors along the roads of a city.
//!
//! Eight roads leave the centre of a city (Amsterdam's coordinates) like spokes, each cut
//! into segments of about 1.2 km with five sensors evenly spaced along each; the roads
//! bend a little at every segment. Segments near the centre are slow streets, outer ones
//! fast ring roads. Traffic follows the local clock (UTC+1): quiet at night, busy by day,
//! with rush hours around 07-09 and 16-18, when vehicle counts rise and speeds fall. Now
//! and then a segment jams: for 2 to 6 minutes its speed collapses to walking pace and
//! fewer vehicles pass.
//!
//! Everything random comes from one SplitMix64 stream seeded by the caller, so the same
//! seed and the same sequence of `now_ms` give the same readings on every machine.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Sensors on one road segment.
pub const SENSORS_PER_SEGMENT: usize = 5;
/// Segments on one road, from the centre outwards.
const SEGMENTS_PER_ROAD: usize = 5;
const CENTRE_LAT: f64 = 52.3676;
const CENTRE_LON: f64 = 4.9041;
const SEGMENT_LENGTH_M: f64 = 1200.0;
const METRES_PER_DEGREE_LAT: f64 = 111_320.0;
/// The city's offset from UTC, which sets when its rush hours are.
const LOCAL_OFFSET_MS: i64 = 3_600_000;
/// Mean time between jams on one segment.
const JAM_MEAN_INTERVAL_MS: f64 = 2.0 * 3_600_000.0;
/// Readings of a first call count vehicles over this span.
const FIRST_INTERVAL_MS: i64 = 1000;

/// Produces one reading per sensor each time it is asked, deterministic for a seed.
#[derive(Debug, Clone)]
pub struct TrafficGenerator {
    rng: SplitMix64,
    segments: Vec<Segment>,
    sensors: Vec<Sensor>,
    last_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct Segment {
    id: String,
    free_speed_kmh: f64,
    capacity_per_hour: f64,
    /// The segment is jammed while the clock is before this instant.
    jam_until_ms: i64,
    jam_speed_kmh: f64,
}

#[derive(Debug, Clone)]
struct Sensor {
    id: String,
    segment: usize,
    latitude: f64,
    longitude: f64,
    /// A sensor reads a little high or low, consistently.
    speed_bias: f64,
    /// Fraction of a vehicle carried to the next reading, so counts add up over time.
    carry: f64,
}

impl TrafficGenerator {
    /// A city with `sensors` sensors, five per segment (the last segment may have fewer).
    pub fn new(seed: u64, sensors: usize) -> Self {
        let mut rng = SplitMix64(seed);
        let segment_count = sensors.div_ceil(SENSORS_PER_SEGMENT);
        let roads = segment_count.div_ceil(SEGMENTS_PER_ROAD).max(1);
        let mut segments = Vec::with_capacity(segment_count);
        let mut placed = Vec::with_capacity(sensors);
        for road in 0..roads {
            let mut heading =
                std::f64::consts::TAU * (road as f64 + rng.range(-0.2, 0.2)) / roads as f64;
            let (mut north_m, mut east_m) = (0.0, 0.0);
            for ring in 0..SEGMENTS_PER_ROAD {
                let index = segments.len();
                if index == segment_count {
                    break;
                }
                heading += rng.range(-0.25, 0.25);
                let (step_north, step_east) = (
                    heading.cos() * SEGMENT_LENGTH_M,
                    heading.sin() * SEGMENT_LENGTH_M,
                );
                let on_segment = (sensors - index * SENSORS_PER_SEGMENT).min(SENSORS_PER_SEGMENT);
                for k in 0..on_segment {
                    let along = (k as f64 + 0.5) / SENSORS_PER_SEGMENT as f64;
                    let (latitude, longitude) =
                        to_lat_lon(north_m + along * step_north, east_m + along * step_east);
                    placed.push(Sensor {
                        id: format!("sensor-{:03}", placed.len() + 1),
                        segment: index,
                        latitude,
                        longitude,
                        speed_bias: rng.range(0.92, 1.08),
                        carry: 0.0,
                    });
                }
                north_m += step_north;
                east_m += step_east;
                segments.push(Segment {
                    id: format!("seg-{:02}", index + 1),
                    free_speed_kmh: 45.0 + 15.0 * ring as f64 + rng.range(-5.0, 5.0),
                    capacity_per_hour: 700.0 + 450.0 * ring as f64,
                    jam_until_ms: i64::MIN,
                    jam_speed_kmh: 0.0,
                });
            }
        }
        TrafficGenerator {
            rng,
            segments,
            sensors: placed,
            last_ms: None,
        }
    }

    /// One reading per sensor at `now_ms` (ms since the epoch, UTC): `SensorId`,
    /// `SegmentId`, `Latitude`, `Longitude`, `VehicleCount` (vehicles since the previous
    /// call), `AvgSpeed` (km/h) and `EventTime` (ISO-8601).
    pub fn readings(&mut self, now_ms: i64) -> Vec<Value> {
        let elapsed_ms = match self.last_ms {
            Some(last) => now_ms.saturating_sub(last).max(0),
            None => FIRST_INTERVAL_MS,
        };
        self.last_ms = Some(now_ms.max(self.last_ms.unwrap_or(i64::MIN)));
        let jam_chance = 1.0 - (-(elapsed_ms as f64) / JAM_MEAN_INTERVAL_MS).exp();
        for segment in &mut self.segments {
            if now_ms >= segment.jam_until_ms && self.rng.unit() < jam_chance {
                segment.jam_until_ms =
                    now_ms.saturating_add(self.rng.range(120_000.0, 360_000.0) as i64);
                segment.jam_speed_kmh = self.rng.range(4.0, 14.0);
            }
        }
        let demand = demand(local_hour(now_ms));
        let event_time = DateTime::<Utc>::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut readings = Vec::with_capacity(self.sensors.len());
        for sensor in &mut self.sensors {
            let segment = &self.segments[sensor.segment];
            let jammed = now_ms < segment.jam_until_ms;
            let speed = if jammed {
                segment.jam_speed_kmh * self.rng.range(0.8, 1.2)
            } else {
                segment.free_speed_kmh * (1.0 - 0.55 * demand * demand) * self.rng.range(0.94, 1.06)
            } * sensor.speed_bias;
            let per_hour = segment.capacity_per_hour * demand * if jammed { 0.3 } else { 1.0 };
            let expected = per_hour * self.rng.range(0.85, 1.15) * elapsed_ms as f64 / 3_600_000.0
                + sensor.carry;
            let count = expected.floor();
            sensor.carry = expected - count;
            readings.push(json!({
                "SensorId": sensor.id,
                "SegmentId": segment.id,
                "Latitude": round(sensor.latitude, 6),
                "Longitude": round(sensor.longitude, 6),
                "VehicleCount": count as u64,
                "AvgSpeed": round(speed, 1),
                "EventTime": event_time,
            }));
        }
        readings
    }
}

/// Hour of the day (0..24, fractional) on the city's clock.
fn local_hour(now_ms: i64) -> f64 {
    now_ms
        .saturating_add(LOCAL_OFFSET_MS)
        .rem_euclid(86_400_000) as f64
        / 3_600_000.0
}

/// Share of road capacity in use at a local hour: low at night, two rush-hour peaks.
fn demand(hour: f64) -> f64 {
    let bump = |centre: f64, width: f64| (-((hour - centre) / width).powi(2) / 2.0).exp();
    (0.08 + 0.3 * bump(13.5, 4.0) + 0.6 * bump(8.0, 0.7) + 0.6 * bump(17.0, 0.7)).min(1.0)
}

fn to_lat_lon(north_m: f64, east_m: f64) -> (f64, f64) {
    let latitude = CENTRE_LAT + north_m / METRES_PER_DEGREE_LAT;
    let longitude = CENTRE_LON + east_m / (METRES_PER_DEGREE_LAT * CENTRE_LAT.to_radians().cos());
    (latitude, longitude)
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// SplitMix64: tiny, fast and fully specified, so a seed means the same city everywhere.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// 2024-03-05T00:00:00Z, a Tuesday.
    const MIDNIGHT_UTC_MS: i64 = 1_709_596_800_000;
    const HOUR_MS: i64 = 3_600_000;

    fn run(seed: u64, start_ms: i64, steps: i64, step_ms: i64) -> Vec<Value> {
        let mut generator = TrafficGenerator::new(seed, 200);
        (0..steps)
            .flat_map(|i| generator.readings(start_ms + i * step_ms))
            .collect()
    }

    fn mean(readings: &[Value], field: &str) -> f64 {
        readings
            .iter()
            .filter_map(|r| r[field].as_f64())
            .sum::<f64>()
            / readings.len() as f64
    }

    #[test]
    fn same_seed_same_readings_other_seed_other_city() {
        let a = run(7, MIDNIGHT_UTC_MS, 50, 200);
        assert_eq!(a, run(7, MIDNIGHT_UTC_MS, 50, 200));
        assert_ne!(a, run(8, MIDNIGHT_UTC_MS, 50, 200));
    }

    #[test]
    fn one_reading_per_sensor_with_all_fields_in_range() {
        let mut generator = TrafficGenerator::new(1, 200);
        let readings = generator.readings(MIDNIGHT_UTC_MS + 7 * HOUR_MS);
        assert_eq!(readings.len(), 200);
        let sensors: BTreeSet<_> = readings.iter().map(|r| r["SensorId"].as_str()).collect();
        assert_eq!(sensors.len(), 200);
        let mut per_segment = BTreeMap::new();
        for r in &readings {
            *per_segment
                .entry(r["SegmentId"].as_str().expect("segment id"))
                .or_insert(0) += 1;
            let (lat, lon) = (
                r["Latitude"].as_f64().expect("lat"),
                r["Longitude"].as_f64().expect("lon"),
            );
            assert!(
                (lat - CENTRE_LAT).abs() < 0.07 && (lon - CENTRE_LON).abs() < 0.11,
                "{r}"
            );
            assert!(r["VehicleCount"].as_u64().is_some(), "{r}");
            let speed = r["AvgSpeed"].as_f64().expect("speed");
            assert!(speed > 0.0 && speed < 130.0, "{r}");
            assert_eq!(r["EventTime"], "2024-03-05T07:00:00.000Z");
        }
        assert_eq!(per_segment.len(), 40);
        assert!(per_segment.values().all(|&n| n == SENSORS_PER_SEGMENT));
        assert_eq!(TrafficGenerator::new(1, 7).readings(0).len(), 7);
        assert!(TrafficGenerator::new(1, 0).readings(0).is_empty());
    }

    #[test]
    fn sensors_of_a_segment_lie_on_a_line() {
        let readings = TrafficGenerator::new(3, 10).readings(MIDNIGHT_UTC_MS);
        let point = |i: usize| {
            (
                readings[i]["Latitude"].as_f64().unwrap_or(0.0),
                readings[i]["Longitude"].as_f64().unwrap_or(0.0),
            )
        };
        let (a, b, c) = (point(0), point(2), point(4));
        let (ab, ac) = ((b.0 - a.0, b.1 - a.1), (c.0 - a.0, c.1 - a.1));
        let sine = (ab.0 * ac.1 - ab.1 * ac.0) / (ab.0.hypot(ab.1) * ac.0.hypot(ac.1));
        assert!(
            sine.abs() < 1e-3,
            "sensors 1, 3, 5 are not on a line: {sine}"
        );
        assert_ne!(a, c);
    }

    #[test]
    fn rush_hour_is_busier_and_slower_than_night() {
        // 08:00 local is 07:00 UTC; 03:00 local is 02:00 UTC.
        let rush = run(5, MIDNIGHT_UTC_MS + 7 * HOUR_MS, 30, 10_000);
        let night = run(5, MIDNIGHT_UTC_MS + 2 * HOUR_MS, 30, 10_000);
        assert!(mean(&rush, "VehicleCount") > 4.0 * mean(&night, "VehicleCount"));
        assert!(mean(&rush, "AvgSpeed") < 0.7 * mean(&night, "AvgSpeed"));
    }

    #[test]
    fn counts_add_up_whatever_the_reading_interval() {
        let total = |step_ms: i64| {
            let steps = 600_000 / step_ms;
            let readings = run(9, MIDNIGHT_UTC_MS + 16 * HOUR_MS, steps + 1, step_ms);
            readings
                .iter()
                .filter_map(|r| r["VehicleCount"].as_u64())
                .sum::<u64>() as f64
        };
        let (fine, coarse) = (total(200), total(10_000));
        assert!((fine - coarse).abs() < 0.1 * coarse, "{fine} vs {coarse}");
    }

    #[test]
    fn jams_happen_now_and_then() {
        // Three night hours, when free-flowing speeds stay above 30 km/h.
        let readings = run(11, MIDNIGHT_UTC_MS + HOUR_MS, 3 * 360, 10_000);
        let jammed = readings
            .iter()
            .filter(|r| r["AvgSpeed"].as_f64().is_some_and(|s| s < 20.0))
            .count();
        let share = jammed as f64 / readings.len() as f64;
        assert!(share > 0.005 && share < 0.1, "jammed share {share}");
    }
}
