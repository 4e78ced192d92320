//! UTC calendar arithmetic for the two timestamps this function writes: the RFC 1123 `Date`
//! header of SLS requests and the RFC 5424 TIMESTAMP. No time zone database is involved:
//! both are UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl Utc {
    /// The UTC calendar time of `secs` seconds after the Unix epoch.
    pub fn from_unix(secs: i64) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// Now, to the second.
    pub fn now() -> Utc {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Utc::from_unix(secs)
    }

    /// `Jan` … `Dec`.
    pub fn month_abbr(&self) -> &'static str {
        MONTHS[self.month as usize - 1]
    }

    /// `Mon, 09 Nov 2015 06:11:16 GMT` (RFC 1123, as every SLS SDK sends it).
    pub fn http_date(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            DAYS[self.weekday as usize],
            self.day,
            self.month_abbr(),
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Parses an RFC 1123 date such as `Mon, 09 Nov 2015 06:11:16 GMT` (the day may have one
/// digit) into Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let rest = s.trim().split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// (year, month, day) to days since 1970-01-01 (inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// English month abbreviations.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days` algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(
            Utc::from_unix(0).http_date(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            Utc::from_unix(1_447_049_476).http_date(),
            "Mon, 09 Nov 2015 06:11:16 GMT"
        );
        // 2000-02-29 (leap day of a century leap year), 23:59:59
        assert_eq!(
            Utc::from_unix(951_868_799).http_date(),
            "Tue, 29 Feb 2000 23:59:59 GMT"
        );
        assert_eq!(
            Utc::from_unix(4_294_967_295).http_date(),
            "Sun, 07 Feb 2106 06:28:15 GMT"
        );
    }

    #[test]
    fn parses_http_dates() {
        assert_eq!(
            parse_http_date("Mon, 09 Nov 2015 06:11:16 GMT"),
            Some(1_447_049_476)
        );
        assert_eq!(
            parse_http_date("Mon, 3 Jan 2010 08:33:47 GMT"),
            Some(1_262_507_627)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        for bad in [
            "",
            "09 Nov 2015 06:11:16 GMT",
            "Mon, 09 Nox 2015 06:11:16 GMT",
            "Mon, 09 Nov 2015 06:11 GMT",
            "Mon, 09 Nov 2015 06:11:16 UTC",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
        let now = Utc::now();
        let t = Utc::from_unix(parse_http_date(&now.http_date()).unwrap());
        assert_eq!(t, now);
    }

    /// Checks every day of 1970..2200 against a naive day-by-day count.
    #[test]
    fn agrees_with_day_by_day_counting() {
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for days in 0..(230 * 366) {
            let t = Utc::from_unix(days * 86_400 + 3_723);
            assert_eq!((t.year, t.month, t.day), (y, m, d), "day {days}");
            assert_eq!((t.hour, t.minute, t.second), (1, 2, 3));
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][m as usize - 1];
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
