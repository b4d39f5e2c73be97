//! The `--bootstrap` argument: a number of resamples, 0 for none. One resample gives no interval (both ends are its
//! one value, which need not even contain the estimate), so 1 is refused where it is typed.

/// Parses a resample count: 0 (no bootstrap) or at least 2.
pub fn parse_resample_count(text: &str) -> Result<usize, String> {
    let count: usize = text.trim().parse().map_err(|_| format!("`{text}` is not a whole number of resamples"))?;
    if count == 1 {
        return Err("one resample gives no interval: give 0 for none, or 2 or more (1,000 or more for a 95% CI)".into());
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_resample_is_refused_and_zero_means_none() {
        assert_eq!(parse_resample_count("0"), Ok(0));
        assert_eq!(parse_resample_count("2000"), Ok(2000));
        assert!(parse_resample_count("1").unwrap_err().contains("no interval"));
        assert!(parse_resample_count("-3").is_err());
    }
}
