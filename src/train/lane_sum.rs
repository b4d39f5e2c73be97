//! Float64 sums of float32 values in independent partial sums.
//!
//! A single running f64 sum is a chain of dependent adds (about 4 cycles each): summing a bias gradient or an
//! instance-norm plane that way cost more than the rest of the op. Eight interleaved partial sums (one AVX-512
//! register of f64) let the adds overlap and vectorise. The order is fixed, so every result is deterministic.

/// Partial sums per call.
pub const LANES: usize = 8;

/// The f64 sum of `term(v)` over `values`: value `j` goes to partial sum `j % LANES` (the tail after the last whole
/// group of [`LANES`] is added one by one), then the partial sums are added in order.
pub fn lane_sum(values: &[f32], term: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0f64; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(f64::from(v));
        }
    }
    rest.iter().fold(lanes.iter().sum::<f64>(), |total, &v| total + term(f64::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against an exact integer sum, at lengths around the lane count, and with a term.
    #[test]
    fn sums_every_value_once() {
        for len in [0usize, 1, 7, 8, 9, 17, 1000] {
            let values: Vec<f32> = (0..len).map(|i| (i % 13) as f32 - 6.0).collect();
            let exact: i64 = (0..len as i64).map(|i| i % 13 - 6).sum();
            assert_eq!(lane_sum(&values, |v| v), exact as f64, "length {len}");
            let squares: i64 = (0..len as i64).map(|i| (i % 13 - 6).pow(2)).sum();
            assert_eq!(lane_sum(&values, |v| v * v), squares as f64, "length {len}, squares");
        }
    }
}
