//! numpy's legacy `RandomState` (MT19937), as far as SMOTE needs it: seeding with an
//! integer (`RandomState(42)`, i.e. `mt19937_seed`), `randint(0, high, size)` (masked
//! rejection sampling on 32-bit draws, `random_bounded_uint64_fill` with `use_masked`) and
//! `uniform(0, 1, size)` (53-bit doubles from two 32-bit draws). Reproducing it makes
//! [`crate::data::smote`] draw exactly the samples imbalanced-learn draws for the same seed.

const N: usize = 624;
const M: usize = 397;

/// The Mersenne Twister state of `numpy.random.RandomState`.
#[derive(Clone)]
pub struct RandomState {
    key: [u32; N],
    pos: usize,
}

impl RandomState {
    /// `RandomState(seed)` for an integer seed below 2^32.
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        let mut s = seed;
        for (pos, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(pos as u32 + 1);
        }
        Self { key, pos: N }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..N {
            let y = (self.key[i] & UPPER) | (self.key[(i + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.key[i] = self.key[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// The next tempered 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random_sample()`: a double in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `randint(0, high, size=n)` for `1 <= high <= 2^32`.
    pub fn randint(&mut self, high: u64, n: usize) -> Vec<u64> {
        assert!((1..=1 << 32).contains(&high), "randint: high must be in 1..=2^32");
        let rng = high - 1;
        if rng == 0 {
            return vec![0; n];
        }
        if rng == u32::MAX as u64 {
            return (0..n).map(|_| self.next_u32() as u64).collect();
        }
        let mut mask = rng;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        (0..n)
            .map(|_| {
                loop {
                    let v = (self.next_u32() as u64) & mask;
                    if v <= rng {
                        break v;
                    }
                }
            })
            .collect()
    }

    /// `uniform(0, 1, size=n)`.
    pub fn uniform(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next_f64()).collect()
    }
}
