//! Seeded randomisation: case selection, opaque case ids, per-reader reading orders and bootstrap resampling.
//!
//! The generator is xoshiro256** (Blackman & Vigna 2018) seeded through SplitMix64, implemented here so a logged
//! seed reproduces the same orders with any future build (a crate's generator may change between versions).
//! Bounded integers use Lemire's multiply-and-reject method, so every index is exactly uniform. Independent streams
//! (per reader, per purpose) come from `derive_seed`: FNV-1a 64 of a label, mixed with the study seed by SplitMix64.

/// One step of SplitMix64: advances `state` and returns a well-mixed 64-bit value.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a 64-bit hash of a label (stable, dependency free).
fn fnv1a64(label: &str) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in label.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

/// Derives an independent seed for one purpose (e.g. `"reader-order/alice"`) from the study seed.
pub fn derive_seed(study_seed: u64, purpose: &str) -> u64 {
    let mut state = study_seed ^ fnv1a64(purpose);
    splitmix64(&mut state)
}

/// xoshiro256** pseudo-random generator (not cryptographic; reproducible from a `u64` seed).
#[derive(Clone, Debug)]
pub struct StudyRng {
    state: [u64; 4],
}

impl StudyRng {
    /// Seeds the four state words with four SplitMix64 outputs (never all zero).
    pub fn from_seed(seed: u64) -> Self {
        let mut sm = seed;
        let state = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Self { state }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// Uniform integer in `0..bound` (Lemire's method; returns 0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let mut product = u128::from(self.next_u64()) * u128::from(bound);
        // Reject the few low words that would make some results more likely than others.
        if (product as u64) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (product as u64) < threshold {
                product = u128::from(self.next_u64()) * u128::from(bound);
            }
        }
        (product >> 64) as u64
    }

    /// Uniform index in `0..len`.
    pub fn index(&mut self, len: usize) -> usize {
        // usize fits in u64 on every supported target; the result is below `len`.
        self.below(len as u64) as usize
    }

    /// Shuffles `items` in place (Fisher-Yates, from the back).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for upper in (1..items.len()).rev() {
            let pick = self.index(upper + 1);
            items.swap(upper, pick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_reference_sequence() {
        // Reference: the test vector of the rand_xoshiro crate (from the C reference), state [1, 2, 3, 4].
        let mut rng = StudyRng { state: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(got, vec![11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn splitmix_matches_reference_sequence() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut state = 0u64;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn same_seed_same_shuffle_different_seed_different_shuffle() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        let mut c = a.clone();
        StudyRng::from_seed(7).shuffle(&mut a);
        StudyRng::from_seed(7).shuffle(&mut b);
        StudyRng::from_seed(8).shuffle(&mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = StudyRng::from_seed(42);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.index(6)] += 1;
        }
        for count in counts {
            assert!((9_500..10_500).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn derived_seeds_differ_by_purpose() {
        assert_ne!(derive_seed(1, "reader-order/alice"), derive_seed(1, "reader-order/bob"));
        assert_eq!(derive_seed(1, "x"), derive_seed(1, "x"));
    }
}
