//! ONNX export parity: a seeded random B0 model (BatchNorm statistics randomised so the
//! folding is exercised) exported by `risk_training::onnx`, run in ONNX Runtime through
//! `risk_inference::session::Model`, compared with the tch forward pass (softmax of the
//! class logits) on the same input; the metadata is read back through `Model::info()`.

use risk_inference::session::{Device, Model, SessionOptions};
use risk_training::model::{RiskUNet, UNetConfig, unet::class_probabilities};
use risk_training::onnx::{self, ExportOptions};
use std::path::Path;
use std::process::Command;

use tch::{Kind, Tensor, nn};

/// Builds the model with random weights and randomised BatchNorm affine and statistics.
fn random_model(cfg: &UNetConfig, seed: i64) -> (nn::VarStore, RiskUNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = RiskUNet::new(&vs.root(), cfg);
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let r = Tensor::rand_like(&t);
            if name.ends_with("running_var") || (name.contains("bn") && name.ends_with("weight")) {
                t.copy_(&(r * 1.0 + 0.5)); // in [0.5, 1.5)
            } else if name.ends_with("running_mean") || name.ends_with(".1.bias") || name.contains("_bn") {
                t.copy_(&((r - 0.5) * 0.2));
            }
        }
    });
    (vs, net)
}

fn parity(cfg: &UNetConfig, size: i64, fp16: bool) -> f32 {
    let (vs, net) = random_model(cfg, 7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    let options = ExportOptions {
        fp16,
        metadata: onnx::default_metadata(cfg),
    };
    onnx::write_model(&vs, cfg, &options, &path).unwrap();
    compare(&net, cfg, &path, size, fp16)
}

/// Runs `net` (tch) and the ONNX file at `path` (ONNX Runtime, CPU) on one random batch,
/// checks the metadata read back, and returns the max abs difference of the probabilities.
fn compare(net: &RiskUNet, cfg: &UNetConfig, path: &Path, size: i64, fp16: bool) -> f32 {
    let n = 2;
    let input = Tensor::randn([n, cfg.in_channels, size, size], (Kind::Float, tch::Device::Cpu));
    let expected = tch::no_grad(|| class_probabilities(&net.forward_t(&input, false).class_logits));
    let expected = Vec::<f32>::try_from(&expected.contiguous().view([-1])).unwrap();
    let input_vec = Vec::<f32>::try_from(&input.contiguous().view([-1])).unwrap();

    let mut model = Model::load(
        path,
        &SessionOptions {
            device: Device::Cpu,
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let info = model.info();
    assert_eq!(info.channels, cfg.in_channels as usize);
    assert_eq!(info.bands, vec![1, 2, 3]);
    assert_eq!(info.class_names, vec!["Low", "Medium", "High"]);
    assert_eq!((info.tile_size, info.tile_overlap), (512, 64));
    assert!((info.mean[0] - 0.485).abs() < 1e-6 && (info.std[2] - 0.225).abs() < 1e-6);
    assert!(info.has_ordinal);
    assert_eq!(info.fp16, fp16);
    assert!(info.version.as_deref().unwrap().contains(cfg.encoder.name));

    let (n, s) = (n as usize, size as usize);
    let mut probs = vec![0f32; n * 3 * s * s];
    model.run(&input_vec, n, s, s, &mut probs).unwrap();
    let max_diff = expected
        .iter()
        .zip(&probs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!(
        "{} {size}x{size} fp16={fp16}: max abs diff {max_diff:e}",
        cfg.encoder.name
    );
    max_diff
}

#[test]
fn b0_onnx_matches_tch() {
    let d = parity(&UNetConfig::b0(), 64, false);
    assert!(d <= 1e-4, "max abs diff {d}");
}

#[test]
fn b0_onnx_fp16_matches_tch() {
    let d = parity(&UNetConfig::b0(), 64, true);
    assert!(d <= 2e-2, "max abs diff {d}");
}

/// `risk-train export CHECKPOINT` on a saved var store (as `fit` writes it).
#[test]
fn cli_export_of_a_checkpoint_matches_tch() {
    let cfg = UNetConfig::b0();
    let (vs, net) = random_model(&cfg, 11);
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("best.safetensors");
    vs.save(&ckpt).unwrap();
    let out = dir.path().join("model.onnx");
    let status = Command::new(env!("CARGO_BIN_EXE_risk-train"))
        .arg("export")
        .arg(&ckpt)
        .arg("-o")
        .arg(&out)
        .args(["--encoder", "b0"])
        .status()
        .unwrap();
    assert!(status.success());
    let d = compare(&net, &cfg, &out, 64, false);
    assert!(d <= 1e-4, "max abs diff {d}");
}

#[test]
fn cli_export_random_init_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.onnx");
    let status = Command::new(env!("CARGO_BIN_EXE_risk-train"))
        .args(["export", "--random-init", "--encoder", "b0", "--fp16", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let model = Model::load(
        &out,
        &SessionOptions {
            device: Device::Cpu,
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(model.info().fp16);
    assert!(model.info().version.as_deref().unwrap().contains("random init"));
}
