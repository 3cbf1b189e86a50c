//! `risk-infer` with ensembles (`--model` repeated), test-time augmentation (`--tta`),
//! multi-scale inference (`--scales`) and the uncertainty raster, end to end through
//! ONNX Runtime and GDAL.
//!
//! The models are written here, as ONNX protobuf bytes (a few fields of `onnx.proto`),
//! so the tests need no Python: a 3x3 convolution (3 -> 3 channels) and a softmax. With a
//! kernel symmetric under the square's flips and rotations the model is D4-equivariant
//! (its zero padding is symmetric too); with a generic kernel it is not.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, stderr};
use risk_inference::raster::{GeoTiffWriter, InputRaster, Window, WriteOptions};

fn risk_infer(models: &[&Path], args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-infer"));
    cmd.args(["--quiet", "--threads", "1"]);
    if !args.iter().any(|a| a.as_ref() == "--crf") {
        cmd.args(["--crf", "off"]);
    }
    for m in models {
        cmd.arg("--model").arg(m);
    }
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("risk-infer runs")
}

fn read_f32(path: &Path) -> (usize, Vec<f32>) {
    let r = InputRaster::open(path).unwrap();
    let bands: Vec<usize> = (1..=r.band_count()).collect();
    let mut v = vec![0f32; bands.len() * r.width() * r.height()];
    r.read_bands(&bands, r.extent(), &mut v).unwrap();
    (bands.len(), v)
}

/// Largest absolute difference over valid pixels (nodata is -1 in both).
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            assert_eq!(*x < 0.0, *y < 0.0, "nodata differs");
            (x - y).abs()
        })
        .fold(0.0, f32::max)
}

/// Runs `models` on `input` with `args` and returns (probs, uncertainty bands, uncertainty).
fn predict(
    models: &[&Path],
    input: &Path,
    args: &[&str],
    dir: &Path,
    tag: &str,
) -> (Vec<f32>, usize, Vec<f32>) {
    let (out, probs, unc) = (
        dir.join(format!("{tag}.tif")),
        dir.join(format!("{tag}_p.tif")),
        dir.join(format!("{tag}_u.tif")),
    );
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &input,
        &"-o",
        &out,
        &"--probs",
        &probs,
        &"--probs-type",
        &"f32",
        &"--uncertainty",
        &unc,
    ];
    for a in args {
        all.push(a);
    }
    let o = risk_infer(models, &all);
    assert!(o.status.success(), "{tag}: {}", stderr(&o));
    let (_, p) = read_f32(&probs);
    let (bands, u) = read_f32(&unc);
    (p, bands, u)
}

/// A 3x3 kernel for output channel `o`, input channel `i`: D4-symmetric (centre, edge,
/// corner weights) or generic.
fn kernel(o: usize, i: usize, symmetric: bool) -> [f32; 9] {
    if symmetric {
        let m = ((o * 3 + i) % 5) as f32 * 0.8 - 1.6;
        let e = ((o + 2 * i) % 3) as f32 * 0.5 - 0.5;
        let c = ((2 * o + i) % 4) as f32 * 0.3 - 0.45;
        [c, e, c, e, m, e, c, e, c]
    } else {
        std::array::from_fn(|k| (1.7 * (o * 27 + i * 9 + k) as f32).sin() * 0.8)
    }
}

/// Writes a conv3x3 + softmax model following the contract, with `risk.*` metadata.
fn write_model(path: &Path, symmetric: bool, metadata: &[(&str, &str)]) {
    let weights: Vec<f32> = (0..3)
        .flat_map(|o| (0..3).flat_map(move |i| kernel(o, i, symmetric)))
        .collect();
    std::fs::write(
        path,
        onnx::conv_softmax_model(&weights, &[0.3, -0.5, 0.1], metadata),
    )
    .unwrap();
}

const TILING: [(&str, &str); 2] = [("risk.tile_size", "128"), ("risk.tile_overlap", "32")];

#[test]
fn tta_of_an_equivariant_model_equals_no_tta() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("symmetric.onnx");
    write_model(&model, true, &TILING);
    let input = fixture("scene700x433.tif");
    let (p0, bands0, u0) = predict(&[&model], &input, &[], d, "plain");
    assert_eq!(bands0, 1, "one view: entropy only");
    for tta in ["flips", "d4"] {
        let (p, bands, u) = predict(&[&model], &input, &["--tta", tta], d, tta);
        assert_eq!(bands, 2, "{tta}: entropy and mutual information");
        let n = p.len() / 3;
        let diff = max_diff(&p, &p0);
        assert!(diff < 1e-5, "{tta}: probabilities differ by {diff}");
        let diff = max_diff(&u[..n], &u0);
        assert!(diff < 1e-5, "{tta}: entropy differs by {diff}");
        // The views agree: no epistemic uncertainty.
        let mi = u[n..].iter().copied().fold(0.0, f32::max);
        assert!(mi < 1e-5, "{tta}: mutual information up to {mi}");
        // The map is not trivial: soft, varied probabilities.
        let valid: Vec<f32> = u0.iter().copied().filter(|&v| v >= 0.0).collect();
        let mean = valid.iter().sum::<f32>() / valid.len() as f32;
        assert!((0.2..0.95).contains(&mean), "mean entropy {mean}");
    }
}

#[test]
fn d4_on_non_square_tiles() {
    // A 300 x 20 raster in 128 px tiles: 20 rows and their 16 px borders round up to 64,
    // so tiles are 128 x 64 and their transposes 64 x 128 model inputs, turned back by
    // the inverse transforms.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("symmetric.onnx");
    write_model(&model, true, &TILING);
    let (w, h) = (300, 20);
    let data: Vec<u8> = (0..3 * w * h).map(|i| (37 + (i * 7919) % 200) as u8).collect();
    let input = d.join("strip.tif");
    let georef = risk_inference::raster::GeoRef::north_up(32633, 600_000.0, 5_000_000.0, 2.0).unwrap();
    let mut wr = GeoTiffWriter::create::<u8>(&input, w, h, 3, &georef, WriteOptions::default()).unwrap();
    wr.write_bands(Window::new(0, 0, w, h), &data).unwrap();
    wr.finish().unwrap();
    let (p0, _, _) = predict(&[&model], &input, &[], d, "plain");
    let (p, _, u) = predict(&[&model], &input, &["--tta", "d4"], d, "d4");
    let diff = max_diff(&p, &p0);
    assert!(diff < 1e-5, "d4 on 128 x 64 tiles differs by {diff}");
    let mi = u[w * h..].iter().copied().fold(0.0, f32::max);
    assert!(mi < 1e-5, "mutual information up to {mi}");
}

/// Symmetry `k` (of 8) of an `n` x `n` square, written out: output `(y, x)` reads the
/// input at the returned pixel.
fn symmetry(k: usize, n: usize, y: usize, x: usize) -> (usize, usize) {
    let m = n - 1;
    match k {
        0 => (y, x),
        1 => (y, m - x),
        2 => (m - y, x),
        3 => (m - y, m - x),
        4 => (x, y),
        5 => (m - x, y),
        6 => (x, m - y),
        _ => (m - x, m - y),
    }
}

#[test]
fn d4_equals_the_mean_over_transformed_rasters() {
    // A model that is not equivariant. The 512 px raster with its 32 px reflected border
    // is one 576 px tile, placed symmetrically, so `--tta d4` must equal the mean of
    // plain runs over the eight flipped/rotated copies of the raster, each turned back.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("generic.onnx");
    write_model(
        &model,
        false,
        &[("risk.tile_size", "1024"), ("risk.tile_overlap", "64")],
    );
    let src = InputRaster::open(fixture("scene512.tif")).unwrap();
    let n = 512;
    let mut image = vec![0u8; 3 * n * n];
    src.read_bands(&[1, 2, 3], src.extent(), &mut image).unwrap();
    let nodata = src.nodata(1).unwrap();
    let mut expect = vec![0f64; 3 * n * n];
    for k in 0..8 {
        let mut t = vec![0u8; 3 * n * n];
        for b in 0..3 {
            for y in 0..n {
                for x in 0..n {
                    let (sy, sx) = symmetry(k, n, y, x);
                    t[b * n * n + y * n + x] = image[b * n * n + sy * n + sx];
                }
            }
        }
        let path = d.join(format!("in{k}.tif"));
        let mut w = GeoTiffWriter::create::<u8>(
            &path,
            n,
            n,
            3,
            &src.georef(),
            WriteOptions {
                nodata,
                ..WriteOptions::default()
            },
        )
        .unwrap();
        w.write_bands(Window::new(0, 0, n, n), &t).unwrap();
        w.finish().unwrap();
        let (p, _, _) = predict(&[&model], &path, &[], d, &format!("t{k}"));
        for c in 0..3 {
            for y in 0..n {
                for x in 0..n {
                    let (sy, sx) = symmetry(k, n, y, x);
                    expect[c * n * n + sy * n + sx] += p[c * n * n + y * n + x] as f64 / 8.0;
                }
            }
        }
    }
    let expect: Vec<f32> = expect.iter().map(|&v| v as f32).collect();
    let (plain, _, _) = predict(&[&model], &fixture("scene512.tif"), &[], d, "plain");
    let (d4, _, u) = predict(&[&model], &fixture("scene512.tif"), &["--tta", "d4"], d, "d4");
    let diff = max_diff(&d4, &expect);
    assert!(diff < 1e-5, "d4 vs mean of transformed runs: {diff}");
    let diff = max_diff(&d4, &plain);
    assert!(
        diff > 0.05,
        "d4 should differ from the plain run, max diff {diff}"
    );
    // The views disagree somewhere: positive mutual information.
    let mi = u[n * n..].iter().copied().fold(0.0, f32::max);
    assert!(mi > 0.01, "mutual information up to {mi}");
}

#[test]
fn an_ensemble_of_one_model_twice_is_that_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("generic.onnx");
    write_model(&model, false, &TILING);
    let input = fixture("scene700x433.tif");
    let (p1, _, u1) = predict(&[&model], &input, &[], d, "one");
    let (p2, bands, u2) = predict(&[&model, &model], &input, &[], d, "two");
    assert_eq!(bands, 2);
    let n = p1.len() / 3;
    assert!(p1 == p2, "probabilities differ by {}", max_diff(&p1, &p2));
    assert!(u1[..n] == u2[..n], "entropy differs");
    assert!(
        u2[n..].iter().all(|&v| v == 0.0 || v == -1.0),
        "identical members: mutual information must be 0"
    );
    // Scale 1 given twice is the same view twice.
    let (p3, _, _) = predict(&[&model], &input, &["--scales", "1,1"], d, "scales11");
    assert!(p1 == p3, "--scales 1,1 differs by {}", max_diff(&p1, &p3));
}

#[test]
fn multi_scale_keeps_probabilities_and_differs_from_one_scale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("generic.onnx");
    write_model(&model, false, &TILING);
    let input = fixture("scene700x433.tif");
    let (p1, _, _) = predict(&[&model], &input, &[], d, "one");
    let (p, bands, u) = predict(&[&model], &input, &["--scales", "0.75,1,1.25"], d, "ms");
    assert_eq!(bands, 2);
    let n = p.len() / 3;
    for i in (0..n).filter(|&i| p[i] >= 0.0) {
        let s = p[i] + p[n + i] + p[2 * n + i];
        assert!((s - 1.0).abs() < 1e-5, "pixel {i}: probabilities sum to {s}");
    }
    let diff = max_diff(&p, &p1);
    assert!(diff > 0.01, "multi-scale equals one scale (max diff {diff})");
    assert!(u[n..].iter().any(|&v| v > 1e-3), "no disagreement between scales");
}

#[test]
fn the_crf_pass_keeps_the_model_views_mutual_information() {
    // With the CRF, band 1 is the entropy of the CRF's marginals, band 2 the model
    // pass's mutual information, unchanged (read back from its float32 raster).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("generic.onnx");
    write_model(&model, false, &TILING);
    let input = fixture("scene512.tif");
    let (_, _, plain) = predict(&[&model], &input, &["--tta", "flips"], d, "plain");
    let (_, bands, crf) = predict(
        &[&model],
        &input,
        &["--tta", "flips", "--crf", "default", "--crf-tile", "600"],
        d,
        "crf",
    );
    assert_eq!(bands, 2);
    let n = plain.len() / 2;
    assert!(
        plain[n..] == crf[n..],
        "mutual information changed by the CRF pass"
    );
    assert!(plain[n..].iter().any(|&v| v > 1e-3));
    assert!(
        max_diff(&plain[..n], &crf[..n]) > 0.05,
        "the CRF did not change the entropy"
    );
}

#[test]
fn members_with_different_contracts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (d.join("a.onnx"), d.join("b_mean.onnx"));
    write_model(&a, true, &TILING);
    write_model(&b, true, &[TILING[0], TILING[1], ("risk.mean", "0.5")]);
    let out = d.join("risk.tif");
    let o = risk_infer(&[&a, &b], &[&fixture("scene512.tif"), &"-o", &out]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("b_mean.onnx") && err.contains("risk.mean") && err.contains("a.onnx"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Just enough of `onnx.proto` (protobuf wire format) to write a model.
mod onnx {
    fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    /// A message under construction.
    #[derive(Default)]
    pub struct Msg(Vec<u8>);

    impl Msg {
        fn int(mut self, field: u64, v: i64) -> Self {
            varint(&mut self.0, field << 3);
            varint(&mut self.0, v as u64);
            self
        }
        fn bytes(mut self, field: u64, b: &[u8]) -> Self {
            varint(&mut self.0, (field << 3) | 2);
            varint(&mut self.0, b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }
        fn str(self, field: u64, s: &str) -> Self {
            self.bytes(field, s.as_bytes())
        }
        fn msg(self, field: u64, m: Msg) -> Self {
            self.bytes(field, &m.0)
        }
    }

    /// TensorProto: float32 initializer.
    fn tensor(name: &str, dims: &[i64], data: &[f32]) -> Msg {
        let mut m = Msg::default();
        for &d in dims {
            m = m.int(1, d);
        }
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        m.int(2, 1).str(8, name).bytes(9, &raw)
    }

    /// ValueInfoProto of a float32 `(N, 3, H, W)` tensor.
    fn value_info(name: &str) -> Msg {
        // TensorShapeProto.dim: Dimension { dim_value = 1, dim_param = 2 }.
        let shape = Msg::default()
            .msg(1, Msg::default().str(2, "N"))
            .msg(1, Msg::default().int(1, 3))
            .msg(1, Msg::default().str(2, "H"))
            .msg(1, Msg::default().str(2, "W"));
        let tensor_type = Msg::default().int(1, 1).msg(2, shape);
        Msg::default()
            .str(1, name)
            .msg(2, Msg::default().msg(1, tensor_type))
    }

    fn ints_attr(name: &str, v: &[i64]) -> Msg {
        let mut m = Msg::default().str(1, name);
        for &x in v {
            m = m.int(8, x);
        }
        m.int(20, 7) // INTS
    }

    /// `image` -> Conv 3x3 (3 -> 3, pads 1, `weights` (3, 3, 3, 3), `bias`) -> Softmax
    /// over channels -> `probs`; opset 17, IR 8.
    pub fn conv_softmax_model(weights: &[f32], bias: &[f32], metadata: &[(&str, &str)]) -> Vec<u8> {
        let conv = Msg::default()
            .str(1, "image")
            .str(1, "w")
            .str(1, "b")
            .str(2, "logits")
            .str(3, "conv")
            .str(4, "Conv")
            .msg(5, ints_attr("kernel_shape", &[3, 3]))
            .msg(5, ints_attr("pads", &[1, 1, 1, 1]));
        let softmax = Msg::default()
            .str(1, "logits")
            .str(2, "probs")
            .str(3, "softmax")
            .str(4, "Softmax")
            .msg(5, Msg::default().str(1, "axis").int(3, 1).int(20, 2)); // INT
        let graph = Msg::default()
            .msg(1, conv)
            .msg(1, softmax)
            .str(2, "risk_test")
            .msg(5, tensor("w", &[3, 3, 3, 3], weights))
            .msg(5, tensor("b", &[3], bias))
            .msg(11, value_info("image"))
            .msg(12, value_info("probs"));
        let mut model = Msg::default()
            .int(1, 8)
            .str(2, "risk-seg tests/ensemble_tta.rs")
            .msg(7, graph)
            .msg(8, Msg::default().str(1, "").int(2, 17));
        for (k, v) in metadata {
            model = model.msg(14, Msg::default().str(1, k).str(2, v));
        }
        model.0
    }
}
