//! IO binding (`--io-binding on`) gives the same probabilities as the plain path, bit for
//! bit, for a float32 model (models/toy.onnx) and a float16 one (models/default.onnx), also
//! when the batch shape changes between runs (the bound tensors are re-allocated) and when
//! it changes back. On this CPU-only machine the bound tensors are plain host memory; on a
//! GPU the same code binds page-locked ones.

mod common;

use risk_inference::session::{Device, IoBindingMode, Model, SessionOptions};

fn load(name: &str, io_binding: IoBindingMode) -> Model {
    let options = SessionOptions {
        device: Device::Cpu,
        threads: 1,
        io_binding,
        ..SessionOptions::default()
    };
    Model::load(common::root().join("models").join(name), &options).unwrap()
}

/// A deterministic batch of normalised values in about [-2, 2].
fn batch(n: usize, c: usize, h: usize, w: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n * c * h * w)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 4.0 - 2.0
        })
        .collect()
}

#[test]
fn bound_runs_equal_plain_runs() {
    for name in ["toy.onnx", "default.onnx"] {
        let mut plain = load(name, IoBindingMode::Off);
        let mut bound = load(name, IoBindingMode::On);
        assert!(!plain.io_binding());
        assert!(bound.io_binding());
        assert!(
            !load(name, IoBindingMode::Auto).io_binding(),
            "auto is off on the CPU"
        );
        let c = plain.info().channels;
        for (i, (n, h, w)) in [(2, 64, 96), (1, 32, 32), (2, 64, 96)].into_iter().enumerate() {
            let input = batch(n, c, h, w, i as u32);
            let mut a = vec![0.0f32; n * 3 * h * w];
            let mut b = vec![f32::NAN; n * 3 * h * w];
            plain.run(&input, n, h, w, &mut a).unwrap();
            bound.run(&input, n, h, w, &mut b).unwrap();
            let differ = a
                .iter()
                .zip(&b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count();
            assert_eq!(differ, 0, "{name}, batch {n}x{h}x{w}: {differ} values differ");
            // Probabilities: each pixel's three classes sum to 1.
            let sum = a[0] + a[h * w] + a[2 * h * w];
            assert!((sum - 1.0).abs() < 2e-3, "{name}: sum {sum}");
        }
    }
}
