//! Datetimes as 100-ns ticks since the Unix epoch: ISO-8601 parsing, ASA's output format,
//! and the calendar arithmetic DATEADD/DATEDIFF/DATEPART need.

/// Ticks in one second, ASA's datetime resolution being 100 ns.
pub const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks in one day, for calendar arithmetic.
pub const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SECOND;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month, day of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Days in a month, leap years included.
pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses ISO-8601 (`2024-01-01`, `2024-01-01T10:00:00.123Z`, `... 10:00+02:00`) to ticks;
/// a missing zone means UTC. `None` when it is not a valid datetime.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4)? as i64;
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ticks = days_from_civil(year, month, day) * TICKS_PER_DAY;
    if matches!(p.peek(), Some(b'T' | b't' | b' ')) {
        p.i += 1;
        let h = p.digits(2)? as i64;
        p.expect(b':')?;
        let mi = p.digits(2)? as i64;
        let mut sec = 0;
        if p.peek() == Some(b':') {
            p.i += 1;
            sec = p.digits(2)? as i64;
        }
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        ticks += (h * 3600 + mi * 60 + sec) * TICKS_PER_SECOND;
        if p.peek() == Some(b'.') {
            p.i += 1;
            let (mut frac, mut n) = (0i64, 0);
            while let Some(c @ b'0'..=b'9') = p.peek() {
                if n < 7 {
                    frac = frac * 10 + (c - b'0') as i64;
                    n += 1;
                }
                p.i += 1;
            }
            if n == 0 {
                return None;
            }
            ticks += frac * 10i64.pow(7 - n);
        }
        match p.peek() {
            Some(b'Z' | b'z') => p.i += 1,
            Some(sign @ (b'+' | b'-')) => {
                p.i += 1;
                let oh = p.digits(2)? as i64;
                if p.peek() == Some(b':') {
                    p.i += 1;
                }
                let om = if p.i < b.len() {
                    p.digits(2)? as i64
                } else {
                    0
                };
                let off = (oh * 60 + om) * 60 * TICKS_PER_SECOND;
                ticks += if sign == b'+' { -off } else { off };
            }
            _ => {}
        }
    }
    (p.i == b.len()).then_some(ticks)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            let c = self.peek().filter(u8::is_ascii_digit)?;
            v = v * 10 + (c - b'0') as u32;
            self.i += 1;
        }
        Some(v)
    }
}

/// Formats ticks the way ASA writes datetimes: `2024-01-01T00:05:00.0000000Z`.
pub fn format_datetime(ticks: i64) -> String {
    let days = ticks.div_euclid(TICKS_PER_DAY);
    let rem = ticks.rem_euclid(TICKS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / TICKS_PER_SECOND;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:07}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % TICKS_PER_SECOND
    )
}

/// The wall clock in ticks, for arrival times of live events.
pub fn now_ticks() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_nanos() / 100) as i64,
        Err(e) => -((e.duration().as_nanos() / 100) as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        let t = parse_datetime("2024-01-01T00:05:00Z").unwrap();
        assert_eq!(format_datetime(t), "2024-01-01T00:05:00.0000000Z");
        assert_eq!(parse_datetime("1970-01-01T00:00:00.0000001Z"), Some(1));
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(
            parse_datetime("2024-01-01T02:00:00+02:00"),
            parse_datetime("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_datetime("2024-02-29 10:00"),
            parse_datetime("2024-02-29T10:00:00.000Z")
        );
        assert_eq!(format_datetime(-1), "1969-12-31T23:59:59.9999999Z");
    }

    #[test]
    fn rejects_invalid_datetimes() {
        for s in [
            "",
            "2024",
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T25:00",
            "2024-01-01Tx",
            "abc",
        ] {
            assert_eq!(parse_datetime(s), None, "{s}");
        }
    }
}
