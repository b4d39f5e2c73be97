//! Metric values as text with a fixed number of decimals, without a negative zero: the distance of a set to itself
//! comes out of the matrix square root as -1e-9, which "{:.3}" prints as -0.000.

/// `value` to `places` decimals; a value that rounds to zero is shown as zero, without a sign.
pub fn fixed_decimals(value: f64, places: usize) -> String {
    let scale = 10f64.powi(i32::try_from(places).unwrap_or(i32::MAX));
    let shown = if (value * scale).round() == 0.0 { 0.0 } else { value };
    format!("{shown:.places$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rounding_residue_below_zero_is_shown_as_zero() {
        assert_eq!(fixed_decimals(-1e-9, 3), "0.000");
        assert_eq!(fixed_decimals(-0.0004, 3), "0.000");
        assert_eq!(fixed_decimals(-0.0006, 3), "-0.001");
        assert_eq!(fixed_decimals(12.3456789, 6), "12.345679");
    }
}
