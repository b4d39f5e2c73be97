//! DA and TM values (PS3.5 6.2) of a moment, in UTC, for the dates a written file states about itself.

use std::time::{SystemTime, UNIX_EPOCH};

/// `("YYYYMMDD", "HHMMSS")` of `moment` in UTC; moments before 1970 give the epoch.
pub fn dicom_date_time_utc(moment: SystemTime) -> (String, String) {
    let seconds = moment.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    (
        format!("{year:04}{month:02}{day:02}"),
        format!("{:02}{:02}{:02}", second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60),
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's `civil_from_days`, for days >= 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Counted from 0000-03-01, so that leap days end each 400-, 100- and 4-year cycle.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_and_times_match_python_datetime() {
        // datetime.datetime.utcfromtimestamp(s) for each s.
        for (seconds, date, time) in [
            (0, "19700101", "000000"),
            (1_700_000_000, "20231114", "221320"),
            (951_782_400, "20000229", "000000"),
            (4_107_542_399, "21000228", "235959"),
        ] {
            let moment = UNIX_EPOCH + Duration::from_secs(seconds);
            assert_eq!(dicom_date_time_utc(moment), (date.to_owned(), time.to_owned()), "{seconds}");
        }
    }
}
