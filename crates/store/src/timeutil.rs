//! Time flags as Thanos parses them: Prometheus durations (`15m`, `1h30m`, `2d`), RFC 3339
//! instants, and `model.TimeOrDuration` (an instant, or a duration relative to now like `-2h`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a Prometheus duration: one or more `<int><unit>` with units `y w d h m s ms`, in
/// decreasing order, or a bare `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("ms", 1),
        ("m", 60 * 1000),
        ("s", 1000),
    ];
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {s:?} is out of range"))?;
        rest = &rest[digits..];
        let Some((rank, (unit, ms))) = UNITS.iter().enumerate().find(|(_, (u, _))| rest.starts_with(u)) else {
            return Err(format!(
                "not a valid duration string: {s:?} (units: y, w, d, h, m, s, ms)"
            ));
        };
        // Order: y w d h m s ms; "ms" sits before "m" in UNITS only so that it is matched first.
        let order = match *unit {
            "ms" => 6,
            "m" => 4,
            "s" => 5,
            _ => rank,
        };
        if last_rank != usize::MAX && order <= last_rank {
            return Err(format!("not a valid duration string: {s:?} (units out of order)"));
        }
        last_rank = order;
        rest = &rest[unit.len()..];
        total_ms = n
            .checked_mul(*ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| format!("duration {s:?} is out of range"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses an RFC 3339 timestamp (`2006-01-02T15:04:05Z`, fractional seconds and numeric
/// offsets allowed) into milliseconds since the epoch. Years 0000–9999, as Go accepts.
pub fn parse_rfc3339_millis(s: &str) -> Result<i64, String> {
    let err = || format!("not an RFC 3339 time: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(err)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        part.parse::<i64>().map_err(|_| err())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(err());
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(err());
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().map_err(|_| err())? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + min * 60 + sec - offset_s;
    Ok(secs * 1000 + frac_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Thanos's `model.TimeOrDuration`: an absolute time, or a duration relative to now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOrDuration {
    Time(i64),
    /// Signed milliseconds relative to "now" at the time of use.
    Relative(i64),
}

impl TimeOrDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(t) = parse_rfc3339_millis(s) {
            return Ok(TimeOrDuration::Time(t));
        }
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let d = parse_duration(body)
            .map_err(|_| format!("{s:?} is neither an RFC 3339 time nor a duration like -2h or 30m"))?;
        let ms = i64::try_from(d.as_millis()).map_err(|_| format!("duration {s:?} is out of range"))?;
        Ok(TimeOrDuration::Relative(if neg { -ms } else { ms }))
    }

    /// Milliseconds since the epoch.
    pub fn resolve(self, now_ms: i64) -> i64 {
        match self {
            TimeOrDuration::Time(t) => t,
            TimeOrDuration::Relative(d) => now_ms.saturating_add(d),
        }
    }
}

impl std::str::FromStr for TimeOrDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A clap value parser for Prometheus durations.
pub fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(2 * 86400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in ["", "m", "10", "1x", "30m1h", "99999999999999999999y", "1h1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_rfc3339_millis("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_rfc3339_millis("2023-11-14T22:13:20.123456789Z").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            parse_rfc3339_millis("2023-11-15T00:13:20+02:00").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_rfc3339_millis("0000-01-01T00:00:00Z").unwrap(),
            -62_167_219_200_000
        );
        assert_eq!(
            parse_rfc3339_millis("9999-12-31T23:59:59Z").unwrap(),
            253_402_300_799_000
        );
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "x023-11-14T22:13:20Z",
        ] {
            assert!(parse_rfc3339_millis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_or_duration() {
        assert_eq!(
            TimeOrDuration::parse("-2h").unwrap(),
            TimeOrDuration::Relative(-7_200_000)
        );
        assert_eq!(TimeOrDuration::parse("2h").unwrap().resolve(1000), 7_201_000);
        assert_eq!(
            TimeOrDuration::parse("1970-01-01T00:00:01Z").unwrap(),
            TimeOrDuration::Time(1000)
        );
        assert!(TimeOrDuration::parse("yesterday").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = TimeOrDuration::parse(&s);
            let _ = parse_duration(&s);
        }
    }
}
