//! Dense CRF against pydensecrf 1.0rc3: committed reference outputs of the pydensecrf harness
//! (`inference/tests/data/crf/make_fixtures.sh` made them: the `bench/reference/scene.py`
//! scene 256 x 256 seed 1, probabilities quantised to uint8, `crf_harness.dense_crf`).
//! Cases: the 256x256 scene and a 200x131 crop of it, presets `default` and `enhanced`.
//! Required: label agreement >= 99.9%; max |Q diff| is printed and must stay below 1e-4.
//!
//! Label compatibility matrices (`--crf-compat`): the same script gives pydensecrf a 2-d
//! `compat` per kernel (its `MatrixCompatibility`): ordinal costs `|i - j|` with both
//! presets, and an asymmetric cost matrix (symmetrised by both sides) on the crop.

use std::path::PathBuf;

use risk_inference::crf::{self, CrfParams, LabelCompat};
use risk_inference::npy::read_npy;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/crf")
        .join(name)
}

/// Inputs of a case: (rgb (H, W, 3), probabilities (3, H, W), width, height).
fn inputs(case: &str) -> (Vec<u8>, Vec<f32>, usize, usize) {
    let img = read_npy::<u8>(data("s256_img.npy")).unwrap();
    let pq = read_npy::<u8>(data("s256_prob_u8.npy")).unwrap();
    assert_eq!(img.shape, [256, 256, 3]);
    assert_eq!(pq.shape, [3, 256, 256]);
    // The reference ran on prob_u8 / 255 in float32.
    let prob: Vec<f32> = pq.data.iter().map(|&q| q as f32 / 255.0).collect();
    match case {
        "s256" => (img.data, prob, 256, 256),
        "s200x131" => {
            let (x0, y0, w, h) = (23, 37, 200, 131);
            let mut rgb = Vec::with_capacity(w * h * 3);
            for y in y0..y0 + h {
                rgb.extend_from_slice(&img.data[(y * 256 + x0) * 3..(y * 256 + x0 + w) * 3]);
            }
            let mut p = Vec::with_capacity(3 * w * h);
            for c in 0..3 {
                for y in y0..y0 + h {
                    let row = c * 256 * 256 + y * 256 + x0;
                    p.extend_from_slice(&prob[row..row + w]);
                }
            }
            (rgb, p, w, h)
        }
        other => panic!("unknown case {other}"),
    }
}

fn check(case: &str, preset: &str) {
    let params = CrfParams::preset(preset).unwrap();
    compare(
        case,
        &params,
        &format!("{case}_labels_{preset}.npy"),
        &format!("{case}_q_{preset}_every16.npy"),
    );
}

/// The CRF of `params` on `case` against pydensecrf's labels and every-16th-pixel Q.
fn compare(case: &str, params: &CrfParams, labels_npy: &str, q_npy: &str) {
    let (rgb, prob, w, h) = inputs(case);
    let preset = labels_npy.trim_end_matches(".npy");
    let q = crf::dense_crf(&rgb, &prob, w, h, params).unwrap();
    let labels = crf::labels_from_q(&q, w * h);
    let want = read_npy::<u8>(data(labels_npy)).unwrap();
    assert_eq!(want.shape, [h, w]);
    let agree = labels.iter().zip(&want.data).filter(|(a, b)| a == b).count() as f64 / (w * h) as f64;
    let q_ref = read_npy::<f32>(data(q_npy)).unwrap();
    let m = (w * h).div_ceil(16);
    assert_eq!(q_ref.shape, [3, m]);
    let mut max_diff = 0f32;
    for c in 0..3 {
        for k in 0..m {
            max_diff = max_diff.max((q[c * w * h + k * 16] - q_ref.data[c * m + k]).abs());
        }
    }
    println!("{preset}: label agreement {agree:.6}, max |Q diff| {max_diff:.3e} (every 16th pixel)");
    assert!(agree >= 0.999, "{preset}: label agreement {agree} < 0.999");
    assert!(max_diff < 1e-4, "{preset}: max |Q diff| {max_diff}");
}

#[test]
fn parity_256_ordinal_default() {
    let params = CrfParams {
        compat: LabelCompat::Ordinal,
        ..CrfParams::DEFAULT
    };
    compare(
        "s256",
        &params,
        "s256_ordinal_default_labels.npy",
        "s256_ordinal_default_q_every16.npy",
    );
}

#[test]
fn parity_256_ordinal_enhanced() {
    let params = CrfParams {
        compat: LabelCompat::Ordinal,
        ..CrfParams::ENHANCED
    };
    compare(
        "s256",
        &params,
        "s256_ordinal_enhanced_labels.npy",
        "s256_ordinal_enhanced_q_every16.npy",
    );
}

#[test]
fn parity_200x131_asymmetric_matrix() {
    let params = CrfParams {
        compat: LabelCompat::parse("0,1,3, 0.5,0,1, 2,2,0").unwrap(),
        ..CrfParams::DEFAULT
    };
    compare(
        "s200x131",
        &params,
        "s200x131_custom_default_labels.npy",
        "s200x131_custom_default_q_every16.npy",
    );
}

/// The matrix `1 - I` is Potts: the two differ by a term equal for all labels of a pixel.
#[test]
fn potts_matrix_equals_potts() {
    let (rgb, prob, w, h) = inputs("s200x131");
    let potts = crf::dense_crf(&rgb, &prob, w, h, &CrfParams::ENHANCED).unwrap();
    let params = CrfParams {
        compat: LabelCompat::parse("0,1,1,1,0,1,1,1,0").unwrap(),
        ..CrfParams::ENHANCED
    };
    let matrix = crf::dense_crf(&rgb, &prob, w, h, &params).unwrap();
    let max = potts
        .iter()
        .zip(&matrix)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-5, "max |Q diff| {max}");
    assert_eq!(
        crf::labels_from_q(&potts, w * h),
        crf::labels_from_q(&matrix, w * h)
    );
}

#[test]
fn parity_256_default() {
    check("s256", "default");
}

#[test]
fn parity_256_enhanced() {
    check("s256", "enhanced");
}

#[test]
fn parity_200x131_default() {
    check("s200x131", "default");
}

#[test]
fn parity_200x131_enhanced() {
    check("s200x131", "enhanced");
}

/// The unary-input entry point equals the probability one on the same unary.
#[test]
fn unary_entry_point_matches() {
    let (rgb, prob, w, h) = inputs("s200x131");
    let params = CrfParams {
        iterations: 2,
        ..CrfParams::ENHANCED
    };
    let q1 = crf::dense_crf(&rgb, &prob, w, h, &params).unwrap();
    let unary: Vec<f32> = prob.iter().map(|p| -p.clamp(1e-5, 1.0).ln()).collect();
    let q2 = crf::dense_crf_unary(&rgb, &unary, w, h, &params).unwrap();
    assert_eq!(q1, q2);
}

/// Bad input is reported, not panicked on.
#[test]
fn errors_name_the_problem() {
    let (rgb, mut prob, w, h) = inputs("s200x131");
    let p = CrfParams::DEFAULT;
    let e = crf::dense_crf(&rgb[..10], &prob, w, h, &p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("image") && e.contains("200x131"), "{e}");
    prob[3 * w * h - 1] = f32::NAN;
    let e = crf::dense_crf(&rgb, &prob, w, h, &p).unwrap_err().to_string();
    assert!(e.contains("x 199, y 130") && e.contains("class 2"), "{e}");
    prob[3 * w * h - 1] = 0.5;
    assert!(CrfParams::preset("strong").is_err());
    let bad = CrfParams {
        bilateral_srgb: 0.0,
        ..p
    };
    assert!(
        crf::dense_crf(&rgb, &prob, w, h, &bad)
            .unwrap_err()
            .to_string()
            .contains("bilateral_srgb")
    );
}
