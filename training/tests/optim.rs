//! The Rust AdamW of `risk_training::optim` against libtorch's own `torch::optim::AdamW`
//! (what tch's `nn::AdamW` runs), and its state surviving a save / load round trip exactly.

mod common;

use approx::assert_abs_diff_eq;
use common::rng_lock;
use risk_training::optim::{AdamW, AdamWConfig, LossScaler};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// A two-layer net and a fixed regression batch.
fn net(vs: &nn::VarStore) -> nn::Sequential {
    let root = vs.root();
    nn::seq()
        .add(nn::linear(&root / "a", 5, 8, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(&root / "b", 8, 3, Default::default()))
}

fn batch() -> (Tensor, Tensor) {
    tch::manual_seed(7);
    (
        Tensor::randn([16, 5], (Kind::Float, Device::Cpu)),
        Tensor::randn([16, 3], (Kind::Float, Device::Cpu)),
    )
}

fn loss(m: &impl Module, xs: &Tensor, ys: &Tensor) -> Tensor {
    (m.forward(xs) - ys).square().mean(Kind::Float)
}

fn params(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn store(seed: i64) -> (nn::VarStore, nn::Sequential) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = net(&vs);
    (vs, m)
}

#[test]
fn matches_libtorch_adamw() {
    let _rng = rng_lock();
    let (xs, ys) = batch();
    let (vs_ref, m_ref) = store(1);
    let (vs, m) = store(1);
    let mut reference = nn::AdamW {
        wd: 0.05,
        ..Default::default()
    }
    .build(&vs_ref, 1e-2)
    .unwrap();
    let cfg = AdamWConfig {
        weight_decay: 0.05,
        ..Default::default()
    };
    let mut ours = AdamW::new(&vs, cfg, 1e-2);
    for step in 0..20 {
        // A learning-rate change half way, as the schedule does between epochs.
        let lr = if step < 10 { 1e-2 } else { 3e-3 };
        reference.set_lr(lr);
        ours.set_lr(lr);
        reference.backward_step(&loss(&m_ref, &xs, &ys));
        ours.backward_step(&loss(&m, &xs, &ys));
    }
    for ((name, a), (_, b)) in params(&vs_ref).iter().zip(params(&vs).iter()) {
        let diff = (a - b).abs().max().double_value(&[]);
        assert_abs_diff_eq!(diff, 0.0, epsilon = 1e-6);
        // And the parameters did move (20 steps of 1e-2 / 3e-3).
        let (_, init) = &params(&store(1).0).into_iter().find(|(n, _)| n == name).unwrap();
        assert!(
            (a - init).abs().max().double_value(&[]) > 1e-2,
            "{name} did not move"
        );
    }
}

#[test]
fn state_round_trip_continues_exactly() {
    let _rng = rng_lock();
    let (xs, ys) = batch();
    let cfg = AdamWConfig::default();
    // Uninterrupted: 6 steps.
    let (vs_a, m_a) = store(3);
    let mut opt_a = AdamW::new(&vs_a, cfg, 5e-3);
    for _ in 0..6 {
        opt_a.backward_step(&loss(&m_a, &xs, &ys));
    }
    // Interrupted after 3 steps: weights and optimiser state saved, loaded into a fresh
    // store (other random init) and optimiser, 3 more steps.
    let dir = tempfile::tempdir().unwrap();
    let (weights, state) = (dir.path().join("w.safetensors"), dir.path().join("o.safetensors"));
    {
        let (vs_b, m_b) = store(3);
        let mut opt_b = AdamW::new(&vs_b, cfg, 5e-3);
        for _ in 0..3 {
            opt_b.backward_step(&loss(&m_b, &xs, &ys));
        }
        vs_b.save(&weights).unwrap();
        opt_b.save(&state).unwrap();
    }
    let (mut vs_c, m_c) = store(99);
    vs_c.load(&weights).unwrap();
    let mut opt_c = AdamW::new(&vs_c, cfg, 5e-3);
    opt_c.load(&state).unwrap();
    assert_eq!(opt_c.step_count(), 3);
    for _ in 0..3 {
        opt_c.backward_step(&loss(&m_c, &xs, &ys));
    }
    for ((name, a), (_, c)) in params(&vs_a).iter().zip(params(&vs_c).iter()) {
        assert!(a.equal(c), "{name} differs after resume");
    }
    // Fresh moments instead of the saved ones give other weights (the state matters).
    let (mut vs_d, m_d) = store(99);
    vs_d.load(&weights).unwrap();
    let mut opt_d = AdamW::new(&vs_d, cfg, 5e-3);
    for _ in 0..3 {
        opt_d.backward_step(&loss(&m_d, &xs, &ys));
    }
    assert!(
        params(&vs_a)
            .iter()
            .zip(params(&vs_d).iter())
            .any(|((_, a), (_, d))| !a.equal(d))
    );
}

#[test]
fn loading_the_state_of_another_model_is_an_error() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.safetensors");
    let (vs, _m) = store(1);
    AdamW::new(&vs, AdamWConfig::default(), 1e-3).save(&path).unwrap();
    let other = nn::VarStore::new(Device::Cpu);
    let _l = nn::linear(other.root() / "c", 2, 2, Default::default());
    let err = AdamW::new(&other, AdamWConfig::default(), 1e-3)
        .load(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exp_avg.c."), "{err}");
}

/// With finite gradients, loss scaling by a power of two changes nothing: the scaled
/// steps give the same weights, bit for bit, as the plain ones. A non-finite loss skips
/// the step (weights and moments untouched), halves the scale, and the state (scale,
/// growth counter) survives a save / load round trip.
#[test]
fn loss_scaling_is_exact_and_skips_non_finite_steps() {
    let _rng = rng_lock();
    let (xs, ys) = batch();
    let cfg = AdamWConfig::default();
    let (vs_plain, m_plain) = store(5);
    let (vs_scaled, m_scaled) = store(5);
    let mut plain = AdamW::new(&vs_plain, cfg, 5e-3);
    let mut scaled = AdamW::new(&vs_scaled, cfg, 5e-3).with_loss_scaling();
    for _ in 0..5 {
        assert!(plain.backward_step(&loss(&m_plain, &xs, &ys)));
        assert!(scaled.backward_step(&loss(&m_scaled, &xs, &ys)));
    }
    for ((name, a), (_, b)) in params(&vs_plain).iter().zip(params(&vs_scaled).iter()) {
        assert!(a.equal(b), "{name}: scaled step differs from the plain one");
    }
    assert_eq!(
        scaled.loss_scaler(),
        Some(LossScaler {
            scale: 65536.0,
            growth: 5
        })
    );

    // An overflowing loss: no step, scale halved, growth reset.
    let before: Vec<Tensor> = params(&vs_scaled).iter().map(|(_, t)| t.copy()).collect();
    let inf = loss(&m_scaled, &xs, &ys) * f64::INFINITY;
    assert!(!scaled.backward_step(&inf));
    for ((name, now), was) in params(&vs_scaled).iter().zip(&before) {
        assert!(now.equal(was), "{name} changed on a skipped step");
    }
    assert_eq!(scaled.step_count(), 5);
    assert_eq!(
        scaled.loss_scaler(),
        Some(LossScaler {
            scale: 32768.0,
            growth: 0
        })
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.safetensors");
    scaled.backward_step(&loss(&m_scaled, &xs, &ys));
    scaled.save(&path).unwrap();
    let mut reloaded = AdamW::new(&vs_scaled, cfg, 5e-3).with_loss_scaling();
    reloaded.load(&path).unwrap();
    assert_eq!(reloaded.step_count(), 6);
    assert_eq!(
        reloaded.loss_scaler(),
        Some(LossScaler {
            scale: 32768.0,
            growth: 1
        })
    );
}
