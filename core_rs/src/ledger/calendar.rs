//! UTC calendar arithmetic on epoch milliseconds: the tax year of a
//! disposal and the day count behind short/long term. Howard Hinnant's
//! `civil_from_days`/`days_from_civil` (proleptic Gregorian), so no date
//! crate is needed.

pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01, rounded down (a time before the epoch belongs to
/// the day it falls in).
pub fn day_of_ms(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// (year, month 1..=12, day 1..=31) of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day number of (year, month, day).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar year of an epoch-millisecond time.
pub fn year_of_ms(ms: i64) -> i64 {
    civil_from_days(day_of_ms(ms)).0
}

/// Held more than 365 days: whole UTC days between the two dates.
pub fn long_term(acquired_ms: i64, disposed_ms: i64) -> bool {
    day_of_ms(disposed_ms) - day_of_ms(acquired_ms) > 365
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-02-29 is day 11016 (30 years incl. 7 leap days = 10957, +59).
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        // 2024-01-01 = day 19723; 2024-12-31 = 19723 + 365 (leap year).
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
        assert_eq!(civil_from_days(20_089), (2025, 1, 1));
        assert_eq!(days_from_civil(2024, 1, 1), 19_723);
        assert_eq!(days_from_civil(1900, 3, 1), -25_508);
    }

    #[test]
    fn round_trip_over_centuries() {
        for z in -800_000..800_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn years_at_the_boundary() {
        // 2024-12-31T23:59:59.999Z and 2025-01-01T00:00:00Z.
        let new_year = 20_089 * MS_PER_DAY;
        assert_eq!(year_of_ms(new_year - 1), 2024);
        assert_eq!(year_of_ms(new_year), 2025);
        assert_eq!(year_of_ms(-1), 1969);
    }

    #[test]
    fn term_is_more_than_365_days() {
        let day = MS_PER_DAY;
        // Bought late on day 0, sold early on day 365: 365 days, short.
        assert!(!long_term(day - 1, 365 * day));
        assert!(long_term(day - 1, 366 * day));
        assert!(long_term(0, 366 * day + day - 1));
        assert!(!long_term(0, 366 * day - 1));
    }
}
