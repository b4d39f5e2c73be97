//! The training random number generator: xoshiro256** seeded through SplitMix64. Its whole state is four numbers,
//! so a checkpoint can hold it, and [`TrainRng::for_stream`] derives an independent generator from
//! `(seed, stream, index)` so that a resumed run draws exactly what an uninterrupted run would.

use serde::{Deserialize, Serialize};

/// What a derived generator is used for; each stream gives unrelated numbers for the same seed and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RngStream {
    /// Initial weights.
    Init = 1,
    /// The data order of one epoch.
    EpochOrder = 2,
    /// Latents, fake labels and augmentation of one training step.
    Step = 3,
}

/// A small serialisable PRNG (xoshiro256**).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainRng {
    state: [u64; 4],
}

/// One SplitMix64 step: advances `x` and returns a well-mixed value.
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl TrainRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let state = [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)];
        Self { state }
    }

    /// The generator for `stream` at `index` (a step or an epoch) of a run seeded with `seed`.
    pub fn for_stream(seed: u64, stream: RngStream, index: u64) -> Self {
        let mut x = seed;
        let a = splitmix64(&mut x);
        let mut y = a ^ (stream as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let b = splitmix64(&mut y);
        Self::new(b ^ index.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.state[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.state[1] << 17;
        self.state[2] ^= self.state[0];
        self.state[3] ^= self.state[1];
        self.state[1] ^= self.state[2];
        self.state[0] ^= self.state[3];
        self.state[2] ^= t;
        self.state[3] = self.state[3].rotate_left(45);
        result
    }

    /// A double in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A whole number in `0..n` (0 when `n` is 0), by the multiply-shift method.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A whole number in `-radius..=radius`.
    pub fn symmetric(&mut self, radius: usize) -> isize {
        self.below(2 * radius + 1) as isize - radius as isize
    }

    /// One standard normal draw (Box-Muller, using the cosine branch only so no state is cached).
    pub fn normal(&mut self) -> f64 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - self.next_f64()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.next_f64()).cos()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let mut a = TrainRng::for_stream(7, RngStream::Step, 3);
        let mut b = TrainRng::for_stream(7, RngStream::Step, 3);
        let mut c = TrainRng::for_stream(7, RngStream::Step, 4);
        let mut d = TrainRng::for_stream(7, RngStream::EpochOrder, 3);
        let first = a.next_u64();
        assert_eq!(first, b.next_u64());
        assert_ne!(first, c.next_u64());
        assert_ne!(first, d.next_u64());
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut rng = TrainRng::new(1);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn below_and_symmetric_stay_in_range_and_cover_it() {
        let mut rng = TrainRng::new(2);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = rng.symmetric(3);
            assert!((-3..=3).contains(&v));
            seen[(v + 3) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = TrainRng::new(3);
        let mut items: Vec<usize> = (0..50).collect();
        rng.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(items, sorted);
    }
}
