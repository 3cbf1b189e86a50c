//! `risk-eval` end to end on small GeoTIFFs written here: the JSON holds the hand-computed
//! numbers, the PNGs and the report exist and decode with the right content, the baseline
//! deltas and targets are printed, and misaligned or invalid inputs fail with one clear line
//! and exit code 1 (2 for usage errors).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use approx::assert_abs_diff_eq;
use risk_inference::metrics::plot::{CLASS_COLOURS, NODATA_COLOUR};
use risk_inference::raster::{GeoRef, GeoTiffWriter, Window, WriteOptions};

const W: usize = 40;
const H: usize = 30;
const WGS84: &str = r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]"#;
const NAD27: &str = r#"GEOGCS["NAD27",DATUM["North_American_Datum_1927",SPHEROID["Clarke 1866",6378206.4,294.978698213898]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]"#;

fn georef(origin_x: f64, wkt: &str) -> GeoRef {
    GeoRef {
        geo_transform: Some([origin_x, 0.001, 0.0, 45.0, 0.0, -0.001]),
        projection: wkt.to_string(),
    }
}

fn write(path: &Path, width: usize, height: usize, data: &[u8], georef: &GeoRef, nodata: f64) {
    let options = WriteOptions {
        nodata: Some(nodata),
        block_size: 16,
        ..Default::default()
    };
    let mut w = GeoTiffWriter::create::<u8>(path, width, height, 1, georef, options).unwrap();
    w.write_band(1, Window::new(0, 0, width, height), data).unwrap();
    w.finish().unwrap();
}

/// Truth: rows 0-9 Low, 10-19 Medium, 20-29 High; pixels (0..5, 0) nodata by the band's
/// nodata value 200. Prediction: the truth, but Medium in rows 0-9 from column 30 (100 px
/// over by 1), High in rows 10-19 from column 20 (200 px over by 1), nodata (255) in
/// column 0 of rows 20-29 (10 px).
fn scene() -> (Vec<u8>, Vec<u8>) {
    let mut truth = vec![0u8; W * H];
    let mut pred = vec![0u8; W * H];
    for y in 0..H {
        for x in 0..W {
            let t = (y / 10) as u8;
            truth[y * W + x] = if y == 0 && x < 5 { 200 } else { t };
            pred[y * W + x] = match (t, x) {
                (0, 30..) => 1,
                (1, 20..) => 2,
                (2, 0) => 255,
                _ => t,
            };
        }
    }
    (truth, pred)
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    truth: PathBuf,
    pred: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (truth, pred) = scene();
    let (tp, pp) = (root.join("labels.tif"), root.join("risk.tif"));
    write(&tp, W, H, &truth, &georef(10.0, WGS84), 200.0);
    write(&pp, W, H, &pred, &georef(10.0, WGS84), 255.0);
    Fixture {
        _dir: dir,
        root,
        truth: tp,
        pred: pp,
    }
}

fn risk_eval(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_risk-eval"))
        .args(args)
        .output()
        .unwrap()
}

fn baseline_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/v2_baseline_metrics.json")
}

#[test]
fn writes_hand_computable_metrics_pngs_and_report() {
    let f = fixture();
    let out = f.root.join("eval");
    let o = risk_eval(&[
        f.pred.as_os_str(),
        "--truth".as_ref(),
        f.truth.as_os_str(),
        "--baseline".as_ref(),
        baseline_path().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Confusion [truth][pred]: Low 295 right + 100 as Medium; Medium 200 + 200 as High;
    // High 390; 5 + 10 nodata pixels left out.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "risk-seg/metrics/v1");
    assert_eq!(
        json["confusion_matrix"],
        serde_json::json!([[295, 100, 0], [0, 200, 200], [0, 0, 390]])
    );
    assert_eq!(json["pixels"], 1185);
    assert_eq!(json["nodata_pixels"], 15);
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    let n = 1185.0;
    assert_abs_diff_eq!(num(&json["accuracy"]), 885.0 / n, epsilon = 1e-12);
    let pe = (395.0 * 295.0 + 400.0 * 300.0 + 390.0 * 590.0) / (n * n);
    assert_abs_diff_eq!(
        num(&json["cohen_kappa"]),
        (885.0 / n - pe) / (1.0 - pe),
        epsilon = 1e-12
    );
    // SciPy's spearmanr and scikit-learn's quadratic kappa of the same 1185 pairs.
    assert_abs_diff_eq!(num(&json["spearman_rho"]), 0.8643968673894993, epsilon = 1e-12);
    assert_abs_diff_eq!(num(&json["quadratic_kappa"]), 0.8206266713759524, epsilon = 1e-12);
    let class = |k: usize, what: &str| num(&json["classes"][k][what]);
    assert_abs_diff_eq!(class(0, "precision"), 1.0);
    assert_abs_diff_eq!(class(0, "recall"), 295.0 / 395.0, epsilon = 1e-12);
    assert_abs_diff_eq!(class(1, "precision"), 200.0 / 300.0, epsilon = 1e-12);
    assert_abs_diff_eq!(class(1, "iou"), 200.0 / 500.0, epsilon = 1e-12);
    assert_abs_diff_eq!(class(2, "recall"), 1.0);
    assert_abs_diff_eq!(class(2, "f1"), 780.0 / 980.0, epsilon = 1e-12);
    assert_eq!(json["classes"][1]["name"], "Medium");
    assert_eq!(json["classes"][2]["support"], 390);

    // Table: baseline and delta for kappa; targets: kappa, class-1 precision, class-2 recall
    // and rho all met.
    let kappa_line = stdout.lines().find(|l| l.starts_with("Cohen's kappa")).unwrap();
    assert!(
        kappa_line.contains("0.6208") && kappa_line.contains("0.4534"),
        "{kappa_line}"
    );
    assert!(
        kappa_line.contains("+0.1674") && kappa_line.ends_with("met"),
        "{kappa_line}"
    );
    assert!(stdout.contains("SPEC targets met: 4 of 4"), "{stdout}");

    // Quicklook, drawn at twice its layout size: 40 x 30 at full resolution, enlarged 12x
    // to 480 x 360 pixels per panel. The Low green covers the truth's 395 and the
    // prediction's 300 Low pixels, plus its 32 x 32 px legend swatch.
    let quicklook = image::open(out.join("quicklook.png")).unwrap().to_rgb8();
    assert!(
        quicklook.width() >= 3 * 480 && quicklook.height() > 360,
        "{:?}",
        quicklook.dimensions()
    );
    let count = |img: &image::RgbImage, c| img.pixels().filter(|p| **p == c).count();
    assert_eq!(count(&quicklook, CLASS_COLOURS[0]), 144 * (395 + 300) + 32 * 32);
    assert_eq!(count(&quicklook, CLASS_COLOURS[1]), 144 * (400 + 300) + 32 * 32);
    // Grey: 5 truth + 10 prediction nodata pixels, 15 in the errors panel, the swatch.
    assert_eq!(count(&quicklook, NODATA_COLOUR), 144 * (5 + 10 + 15) + 32 * 32);
    let confusion = image::open(out.join("confusion_matrix.png")).unwrap().to_rgb8();
    assert!(
        confusion.width() >= 900 && confusion.height() >= 900,
        "{:?}",
        confusion.dimensions()
    );

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for link in ["(metrics.json)", "(confusion_matrix.png)", "(quicklook.png)"] {
        assert!(report.contains(link), "report.md lacks {link}");
    }
    assert!(
        report.contains("| Cohen's kappa | 0.6208 | 0.4534 | +0.1674 |"),
        "{report}"
    );
    // Nothing temporary is left behind.
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

fn assert_fails_with(o: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} not in: {stderr}");
    }
}

#[test]
fn misaligned_rasters_fail_with_one_line_naming_both_files() {
    let f = fixture();
    let (_, pred) = scene();
    let cases = [
        ("taller.tif", H + 1, georef(10.0, WGS84), "size 40x31 vs 40x30"),
        ("shifted.tif", H, georef(10.5, WGS84), "geotransform [10.5,"),
        ("nad27.tif", H, georef(10.0, NAD27), "CRS"),
    ];
    for (name, height, georef, what) in cases {
        let path = f.root.join(name);
        let mut data = pred.clone();
        data.resize(W * height, 0);
        write(&path, W, height, &data, &georef, 255.0);
        let out = f.root.join(format!("{name}_eval"));
        let o = risk_eval(&[
            path.as_os_str(),
            "--truth".as_ref(),
            f.truth.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert_fails_with(&o, 1, &[name, "labels.tif", "do not align", what]);
        assert!(!out.join("metrics.json").exists());
    }
}

#[test]
fn a_value_that_is_no_class_fails_naming_the_pixel() {
    let f = fixture();
    let (_, mut pred) = scene();
    pred[3 * W + 7] = 7;
    let path = f.root.join("bad.tif");
    write(&path, W, H, &pred, &georef(10.0, WGS84), 255.0);
    let o = risk_eval(&[path.as_os_str(), "--truth".as_ref(), f.truth.as_os_str()]);
    assert_fails_with(&o, 1, &["bad.tif", "pixel (7, 3) holds 7"]);
}

#[test]
fn missing_baseline_and_usage_errors_have_their_exit_codes() {
    let f = fixture();
    let o = risk_eval(&[
        f.pred.as_os_str(),
        "--truth".as_ref(),
        f.truth.as_os_str(),
        "--baseline".as_ref(),
        f.root.join("nope.json").as_os_str(),
    ]);
    assert_fails_with(&o, 1, &["nope.json", "not a metrics JSON file"]);
    let o = risk_eval(&[f.pred.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--truth"));
}

#[test]
fn default_output_folder_is_beside_the_prediction() {
    let f = fixture();
    let o = risk_eval(&[f.pred.as_os_str(), "--truth".as_ref(), f.truth.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(f.root.join("risk_eval/report.md").is_file());
}

#[test]
fn a_prediction_without_any_class_fails_instead_of_writing_undefined_metrics() {
    let f = fixture();
    let path = f.root.join("empty.tif");
    write(&path, W, H, &vec![255u8; W * H], &georef(10.0, WGS84), 255.0);
    let out = f.root.join("empty_eval");
    let o = risk_eval(&[
        path.as_os_str(),
        "--truth".as_ref(),
        f.truth.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_fails_with(&o, 1, &["empty.tif", "labels.tif", "nothing to evaluate"]);
    assert!(!out.join("metrics.json").exists());
}

/// `--probs`: class probabilities (u8 x 255, 255 nodata, as `risk-infer --probs` writes
/// them) become classes by the argmax, or by a model's decision rule, are written to
/// `<out>/classes.tif` and scored. Probabilities 0.8 on the prediction's class and 0.1 on
/// the others give back the prediction of `scene()` and its hand-computed matrix.
#[test]
fn probabilities_are_scored_through_the_decision_rule() {
    let f = fixture();
    let (_, pred) = scene();
    let n = W * H;
    let mut probs = vec![0u8; 3 * n];
    for (i, &c) in pred.iter().enumerate() {
        for k in 0..3 {
            probs[k * n + i] = match c {
                255 => 255,
                c if c as usize == k => 204,
                _ => 26,
            };
        }
    }
    let path = f.root.join("probs.tif");
    let options = WriteOptions {
        nodata: Some(255.0),
        block_size: 16,
        ..Default::default()
    };
    let mut w = GeoTiffWriter::create::<u8>(&path, W, H, 3, &georef(10.0, WGS84), options).unwrap();
    w.write_bands(Window::new(0, 0, W, H), &probs).unwrap();
    w.finish().unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default.onnx");
    for (name, extra) in [("argmax", None), ("rule", Some(model.as_os_str()))] {
        let out = f.root.join(name);
        let mut args = vec![
            "--probs".as_ref(),
            path.as_os_str(),
            "--truth".as_ref(),
            f.truth.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ];
        if let Some(m) = extra {
            args.extend(["--decision-model".as_ref(), m]);
        }
        let o = risk_eval(&args);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{name}: {stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(stdout.contains("decision: "), "{stdout}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(
            json["confusion_matrix"],
            serde_json::json!([[295, 100, 0], [0, 200, 200], [0, 0, 390]]),
            "{name}"
        );
        assert!(out.join("classes.tif").is_file());
    }
    // --decision-model needs --probs: a usage error.
    let o = risk_eval(&[
        f.pred.as_os_str(),
        "--truth".as_ref(),
        f.truth.as_os_str(),
        "--decision-model".as_ref(),
        model.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}
