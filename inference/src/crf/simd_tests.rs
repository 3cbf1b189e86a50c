//! Property tests of the private SIMD kernels: every one this CPU can run equals the scalar
//! reference within 1e-5 on random inputs (deterministic xorshift generator, many sizes and
//! seeds).

use super::simd::{self, Isa, Value};

/// xorshift64*: small, deterministic, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn values(&mut self, n: usize) -> Vec<Value> {
        (0..n)
            .map(|_| [self.f32(-2.0, 2.0), self.f32(-2.0, 2.0), self.f32(-2.0, 2.0), 0.0])
            .collect()
    }
}

fn assert_close(a: &[Value], b: &[Value], what: &str, isa: Isa) {
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        for c in 0..4 {
            assert!(
                (x[c] - y[c]).abs() <= 1e-5,
                "{what} {isa:?}: element {k} lane {c}: {} vs {}",
                x[c],
                y[c]
            );
        }
    }
}

#[test]
fn blur_matches_scalar() {
    let mut rng = Rng(0x1234_5678);
    for case in 0..40 {
        let m = 1 + rng.below(300);
        let stride = 3 + case % 4;
        let mut src = rng.values(m + 1);
        src[m] = [0.0; 4];
        // Neighbours anywhere, "missing" (= m) one time in four.
        let nb: Vec<[u32; 2]> = (0..m * stride)
            .map(|_| {
                let mut pick = || {
                    if rng.below(4) == 0 {
                        m as u32
                    } else {
                        rng.below(m) as u32
                    }
                };
                [pick(), pick()]
            })
            .collect();
        let axis = rng.below(stride);
        let v0 = rng.below(m);
        let len = m - v0;
        let mut want = vec![[0.0; 4]; len];
        simd::blur_scalar(&src, &nb, stride, axis, v0, &mut want);
        for isa in Isa::available() {
            let mut got = vec![[9.0; 4]; len];
            simd::blur(isa, &src, &nb, stride, axis, v0, &mut got);
            assert_close(&got, &want, "blur", isa);
        }
    }
}

#[test]
fn gather_and_scatter_match_scalar() {
    let mut rng = Rng(0xDEAD_BEEF);
    for case in 0..40 {
        let r = if case % 2 == 0 { 3 } else { 6 };
        let m = 1 + rng.below(200);
        let pixels = 1 + rng.below(70);
        let vals = rng.values(m + 1);
        let ids: Vec<u32> = (0..pixels * r).map(|_| rng.below(m + 1) as u32).collect();
        let w: Vec<f32> = (0..pixels * r).map(|_| rng.f32(0.0, 1.0)).collect();
        let alpha = rng.f32(0.5, 1.0);
        let mut want = vec![[0.0; 4]; pixels];
        simd::gather_scalar(&vals, &ids, &w, alpha, &mut want);
        let q = rng.values(pixels);
        let mut want_s = vals.clone();
        simd::scatter_scalar(&mut want_s, &ids, &w, &q);
        for isa in Isa::available() {
            let mut got = vec![[9.0; 4]; pixels];
            let mut got_s = vals.clone();
            if r == 3 {
                simd::gather::<3>(isa, &vals, &ids, &w, alpha, &mut got);
                simd::scatter::<3>(isa, &mut got_s, &ids, &w, &q);
            } else {
                simd::gather::<6>(isa, &vals, &ids, &w, alpha, &mut got);
                simd::scatter::<6>(isa, &mut got_s, &ids, &w, &q);
            }
            assert_close(&got, &want, "gather", isa);
            assert_close(&got_s, &want_s, "scatter", isa);
        }
    }
}

#[test]
fn softmax_matches_scalar() {
    let mut rng = Rng(42);
    for case in 0..60 {
        let len = 1 + rng.below(70);
        // Energies as the mean field produces them: up to about +-60 (unaries <= 11.5 plus
        // compat-weighted messages), some ties and extreme gaps.
        let spread = [0.1f32, 5.0, 60.0, 200.0][case % 4];
        let t: [Vec<f32>; 3] = std::array::from_fn(|_| (0..len).map(|_| rng.f32(-spread, spread)).collect());
        let mut want = t.clone();
        simd::softmax3_scalar(&mut want, len);
        for isa in Isa::available() {
            let mut got = t.clone();
            simd::softmax3(isa, &mut got, len);
            for c in 0..3 {
                for k in 0..len {
                    let (a, b) = (got[c][k], want[c][k]);
                    assert!(
                        (a - b).abs() <= 1e-5,
                        "softmax {isa:?} case {case} [{c}][{k}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn all_isas_are_tested_here() {
    // On the x86-64 CI machines AVX2 is present; make sure the SIMD paths really ran.
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        assert_eq!(Isa::available(), vec![Isa::Scalar, Isa::Sse41, Isa::Avx2Fma]);
    }
}

#[test]
fn energies_and_weighted_q_match_scalar() {
    let mut rng = Rng(0xE4E4);
    for case in 0..40 {
        let n = 1 + rng.below(70);
        // Slices as the passes produce them: messages of a few units, K·1 in lane 3 from
        // about 1e-3 (isolated pixels) to a few hundred.
        let out: [Vec<Value>; 2] = std::array::from_fn(|_| {
            (0..n)
                .map(|_| {
                    [
                        rng.f32(0.0, 5.0),
                        rng.f32(0.0, 5.0),
                        rng.f32(0.0, 5.0),
                        rng.f32(1e-3, 300.0),
                    ]
                })
                .collect()
        });
        let u: [Vec<f32>; 3] = std::array::from_fn(|_| (0..n).map(|_| rng.f32(0.0, 11.5)).collect());
        let w = [-rng.f32(1.0, 5.0), -rng.f32(5.0, 15.0)];
        let first = case % 5 == 0;
        let mut want_t: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0; n]);
        let (mut want_ng, mut want_nb) = (vec![0.0; n], vec![0.0; n]);
        let inputs = simd::EnergyInputs {
            out: [&out[0], &out[1]],
            u: [&u[0], &u[1], &u[2]],
            w,
            first,
        };
        simd::energies_scalar(&inputs, &mut want_t, [&mut want_ng, &mut want_nb]);
        let mut want_q = vec![[0.0; 4]; n];
        simd::weighted_q_from(0, &want_t, &want_nb, &mut want_q);
        for isa in Isa::available() {
            let mut t: [Vec<f32>; 3] = std::array::from_fn(|_| vec![9.0; n]);
            let (mut ng, mut nb) = (vec![9.0; n], vec![9.0; n]);
            simd::energies(isa, &inputs, &mut t, [&mut ng, &mut nb]);
            // No FMA and the same f64 steps: the same bits on every ISA.
            assert_eq!(
                (&t, &ng, &nb),
                (&want_t, &want_ng, &want_nb),
                "energies {isa:?} case {case}"
            );
            let mut q = vec![[9.0; 4]; n];
            simd::weighted_q(isa, &t, &nb, &mut q);
            assert_eq!(q, want_q, "weighted_q {isa:?} case {case}");
        }
    }
}
