//! The documented, seeded random-number generator used for resampling (bootstrap, KID subsets, MS-SSIM pairs).
//!
//! Algorithm: the 64-bit seed is expanded by SplitMix64 into the 256-bit state of xoshiro256** (Blackman and
//! Vigna 2018). Integers below `n` use Lemire's multiply-shift with rejection, so they are exactly uniform.
//! The stream is stable across platforms and releases of this crate; results depend only on the seed.
//! It is not the numpy or pandas stream, so resamples differ from the Python scripts' (statistics do not).

/// xoshiro256** seeded through SplitMix64.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: [u64; 4],
}

impl SeededRng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self { state: [next(), next(), next(), next()] }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n`; returns 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        let n64 = n as u64;
        if n64 == 0 {
            return 0;
        }
        // Lemire (2019): the high half of a 128-bit product, rejecting the biased low range.
        let threshold = n64.wrapping_neg() % n64;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n64);
            if (product as u64) >= threshold {
                return (product >> 64) as usize;
            }
        }
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `count` distinct indices from `0..n` in random order (partial Fisher-Yates); `count` is clamped to `n`.
    pub fn sample_without_replacement(&mut self, n: usize, count: usize) -> Vec<usize> {
        let count = count.min(n);
        let mut pool: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let j = i + self.below(n - i);
            pool.swap(i, j);
        }
        pool.truncate(count);
        pool
    }

    /// `count` indices from `0..n` drawn with replacement (empty when `n` is 0).
    pub fn sample_with_replacement(&mut self, n: usize, count: usize) -> Vec<usize> {
        if n == 0 {
            return Vec::new();
        }
        (0..count).map(|_| self.below(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_different_seed_different_stream() {
        let mut a = SeededRng::new(42);
        let mut b = SeededRng::new(42);
        let mut c = SeededRng::new(43);
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut rng = SeededRng::new(1);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[rng.below(7)] += 1;
        }
        // Each bin expects 10,000 with SD about 93; 5 SD bounds.
        for c in counts {
            assert!((9_535..=10_465).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn sample_without_replacement_is_distinct_and_clamped() {
        let mut rng = SeededRng::new(9);
        let mut s = rng.sample_without_replacement(10, 25);
        assert_eq!(s.len(), 10);
        s.sort_unstable();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
        assert!(rng.sample_with_replacement(0, 5).is_empty());
        let u = rng.unit_f64();
        assert!((0.0..1.0).contains(&u));
    }
}
