//! The input domain check of risk-infer (`risk_inference::input_scale`) on the committed
//! uint16 fixture and its uint8 twin, regenerated here from the same seed and size with
//! the same generator (u8 = reflectance x 255, u16 = reflectance x 10000, one scene).
//!
//! The shipped model expects Byte (risk.scale 1/255). With the default rule the uint16
//! scene must score as its uint8 twin does (Cohen's kappa within 0.05 against the same
//! labels); with `--input-scale model` (1/255 on uint16, the old silent behaviour) it is
//! meaningless (kappa near 0), which is what the check exists to prevent. A type with no
//! rule is refused.

use std::path::{Path, PathBuf};

use risk_inference::input_scale::{InputScale, band_scales};
use risk_inference::metrics::ConfusionMatrix;
use risk_inference::pipeline::{self, Outputs, RunOptions};
use risk_inference::predictor::Predictor;
use risk_inference::raster::InputRaster;
use risk_inference::session::{Device, Model, SessionOptions};
use risk_training::synth::{self, FIXTURES, SynthDtype};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn band1(path: &Path) -> Vec<u8> {
    let r = InputRaster::open(path).unwrap();
    let mut v = vec![0u8; r.width() * r.height()];
    r.read_bands(&[1], r.extent(), &mut v).unwrap();
    v
}

fn kappa(predictor: &mut Predictor, image: &Path, labels: &[u8], scale: InputScale, out: &Path) -> f64 {
    let outputs = Outputs {
        classes: Some(out.to_path_buf()),
        probs: None,
        uncertainty: None,
    };
    let opts = RunOptions {
        input_scale: scale,
        ..RunOptions::default()
    };
    pipeline::run(predictor, image, &outputs, &opts, &mut |_, _| {}).unwrap();
    ConfusionMatrix::from_labels(labels, &band1(out))
        .unwrap()
        .cohen_kappa()
        .unwrap()
}

#[test]
fn uint16_scores_as_its_uint8_twin_or_is_refused() {
    let fixture = FIXTURES.iter().find(|f| f.name == "scene256_nir_u16").unwrap();
    let u16_image = root().join("fixtures/scene256_nir_u16.tif");
    let labels = band1(&root().join("fixtures/scene256_nir_u16_labels.tif"));
    let dir = tempfile::tempdir().unwrap();
    let (twin, twin_labels) = (dir.path().join("u8.tif"), dir.path().join("u8_labels.tif"));
    let cfg = synth::SynthConfig {
        dtype: SynthDtype::U8,
        ..fixture.config()
    };
    synth::write_scene(&cfg, &twin, &twin_labels).unwrap();
    assert_eq!(band1(&twin_labels), labels, "the twin has the fixture's labels");

    let options = SessionOptions {
        device: Device::Cpu,
        threads: 1,
        ..SessionOptions::default()
    };
    let model = Model::load(root().join("models/default.onnx"), &options).unwrap();
    let info = model.info().clone();
    let mut predictor = Predictor::from(model);
    let out = dir.path().join("pred.tif");
    let k8 = kappa(&mut predictor, &twin, &labels, InputScale::Auto, &out);
    let k16 = kappa(&mut predictor, &u16_image, &labels, InputScale::Auto, &out);
    let k16_raw = kappa(&mut predictor, &u16_image, &labels, InputScale::Model, &out);
    let k16_factor = kappa(
        &mut predictor,
        &u16_image,
        &labels,
        InputScale::Factor(1e-4),
        &out,
    );
    eprintln!(
        "kappa: uint8 twin {k8:.4}, uint16 auto {k16:.4}, factor 1e-4 {k16_factor:.4}, model scale {k16_raw:.4}"
    );
    assert!(k8 > 0.6, "the twin scores as a real scene: kappa {k8}");
    assert!((k16 - k8).abs() < 0.05, "uint16 {k16} vs uint8 {k8}");
    // 1e-4 = (1/255) x (255/10000): the rule, stated by hand.
    assert!((k16_factor - k16).abs() < 1e-3, "{k16_factor} vs {k16}");
    assert!(
        k16_raw < 0.2,
        "1/255 on uint16 should be meaningless, got {k16_raw}"
    );

    // The rule in numbers, and a type without one refused with a way out.
    let types = |t: &str| vec![t.to_string(); 3];
    let (s, warn) = band_scales(&info, &[1, 2, 3], &types("UInt16"), InputScale::Auto).unwrap();
    assert!(
        s.iter().all(|&f| (f - 1e-4).abs() < 1e-9) && warn.is_some(),
        "{s:?}"
    );
    let (s, warn) = band_scales(&info, &[1, 2, 3], &types("Byte"), InputScale::Auto).unwrap();
    assert!(s.iter().all(|&f| (f - 1.0 / 255.0).abs() < 1e-9) && warn.is_none());
    let err = band_scales(&info, &[1, 2, 3], &types("Float32"), InputScale::Auto)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--input-scale") && err.contains("Float32"), "{err}");
    let (s, _) = band_scales(&info, &[1, 2, 3], &types("Float32"), InputScale::Factor(0.5)).unwrap();
    assert_eq!(s, vec![0.5; 3]);
}
