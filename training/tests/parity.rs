//! Architecture parity with the source model: smp 0.6.0 `Unet(efficientnet-b0 / -b4)`
//! built with a fixed seed by `bench/reference/smp_ref.py dump` (state dict, one
//! 1x3x64x64 input and its eval-mode logits, as safetensors), loaded into [`RiskUNet`]
//! (without CBAM, which smp lacks) by name; the Rust forward pass must give the same
//! logits within 1e-4 and the same parameter counts.
//!
//! The reference files are generated on first use into `target/tmp/smp-parity/` with the
//! venv that `scripts/setup.sh` installs in `.deps/smp-venv` (about 10 s for both).

use std::path::{Path, PathBuf};
use std::process::Command;

use risk_training::model::{ParameterCounts, RiskUNet, UNetConfig, import_tensors};
use tch::{Device, Tensor, nn};

const TOLERANCE: f64 = 1e-4;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of the reference dump for `encoder`, generated if missing.
fn reference(encoder: &str, decoder: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smp-parity");
    let out = dir.join(format!("{encoder}_seed0_size64.safetensors"));
    if out.exists() {
        return out;
    }
    let root = workspace_root();
    let python = root.join(".deps/smp-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs the smp reference venv)",
        python.display()
    );
    std::fs::create_dir_all(&dir).expect("create target/tmp/smp-parity");
    let part = dir.join(format!("{encoder}.{}.part", std::process::id()));
    let script = root.join("bench/reference/smp_ref.py");
    let status = Command::new(&python)
        .arg(&script)
        .args([
            "dump",
            "--encoder",
            encoder,
            "--decoder",
            decoder,
            "--seed",
            "0",
            "--size",
            "64",
        ])
        .arg("--out")
        .arg(&part)
        .status()
        .expect("run bench/reference/smp_ref.py");
    assert!(status.success(), "smp_ref.py dump failed for {encoder}");
    std::fs::rename(&part, &out).expect("move the reference into place");
    out
}

/// Trainable parameters in an smp state dict: everything but BatchNorm buffers.
fn state_dict_parameters(tensors: &[(String, Tensor)]) -> i64 {
    tensors
        .iter()
        .filter(|(n, _)| {
            !(n.ends_with(".running_mean")
                || n.ends_with(".running_var")
                || n.ends_with(".num_batches_tracked"))
        })
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

/// Loads the reference into a fresh model and returns (max |diff|, parameter counts,
/// parameters in the file).
fn check(cfg: UNetConfig, encoder: &str, decoder: &str) -> (f64, ParameterCounts, i64) {
    let file = reference(encoder, decoder);
    let mut tensors = Tensor::read_safetensors(&file).expect("read the reference");
    let take = |tensors: &mut Vec<(String, Tensor)>, name: &str| {
        let i = tensors
            .iter()
            .position(|(n, _)| n == name)
            .expect("input/output in the dump");
        tensors.remove(i).1
    };
    let input = take(&mut tensors, "input");
    let expected = take(&mut tensors, "output");
    let file_params = state_dict_parameters(&tensors);

    let vs = nn::VarStore::new(Device::Cpu);
    let model = RiskUNet::new(&vs.root(), &cfg.without_attention());
    let report =
        import_tensors(&vs, tensors, &file.display().to_string()).expect("import the smp state dict");
    assert_eq!(
        report.kept_init,
        vec!["coral.bias".to_string(), "coral.weight".to_string()]
    );
    let got = tch::no_grad(|| model.forward_t(&input, false).class_logits);
    assert_eq!(got.size(), expected.size());
    let diff = (got - &expected).abs().max().double_value(&[]);
    (diff, ParameterCounts::of(&vs), file_params)
}

#[test]
fn b0_matches_smp() {
    let (diff, counts, file_params) = check(UNetConfig::b0(), "efficientnet-b0", "128,64,32,16,8");
    eprintln!("b0: max |rust - smp| = {diff:.3e}, parameters {counts:?}");
    assert!(diff <= TOLERANCE, "b0 logits differ from smp by {diff:e}");
    // smp's parameter count: 4,835,319 = 4,007,548 + 827,552 + 219.
    assert_eq!(
        (counts.encoder, counts.decoder, counts.head),
        (4_007_548, 827_552, 219)
    );
    assert_eq!(counts.smp_total(), 4_835_319);
    assert_eq!(file_params, 4_835_319);
}

#[test]
fn b4_matches_smp() {
    let (diff, counts, file_params) = check(UNetConfig::b4(), "efficientnet-b4", "256,128,64,32,16");
    eprintln!("b4: max |rust - smp| = {diff:.3e}, parameters {counts:?}");
    assert!(diff <= TOLERANCE, "b4 logits differ from smp by {diff:e}");
    // 20,225,979 = 17,548,616 + 2,676,928 + 435.
    assert_eq!(
        (counts.encoder, counts.decoder, counts.head),
        (17_548_616, 2_676_928, 435)
    );
    assert_eq!(counts.smp_total(), 20_225_979);
    assert_eq!(file_params, 20_225_979);
}
