//! The GIS deliverables of `risk-infer` end to end, checked with GDAL's own tools
//! (`gdalinfo -json`, `ogrinfo`): provenance metadata and the class map's attribute table
//! (kept by the mosaic).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, root, stderr};
use serde_json::Value;

fn risk_infer(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-infer"));
    for a in args {
        cmd.arg(a);
    }
    cmd.arg("--quiet");
    cmd.output().expect("risk-infer runs")
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

fn model() -> std::path::PathBuf {
    root().join("models/default.onnx")
}

/// `gdalinfo -json` of a raster.
fn gdalinfo(path: &Path) -> Value {
    let o = Command::new("gdalinfo")
        .arg("-json")
        .arg(path)
        .output()
        .expect("gdalinfo runs");
    assert!(o.status.success(), "gdalinfo {}: {}", path.display(), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The SHA-256 of a file by coreutils' `sha256sum`.
fn sha256sum(path: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The class map's attribute table rows as GDAL reads them: value, name, r, g, b, a.
fn rat_rows(info: &Value) -> Vec<Value> {
    info["rat"]["row"]
        .as_array()
        .unwrap_or_else(|| panic!("no attribute table: {info}"))
        .iter()
        .map(|r| r["f"].clone())
        .collect()
}

fn expected_rat() -> Vec<Value> {
    risk_inference::classes::PALETTE[..3]
        .iter()
        .map(|&(v, [r, g, b, a])| {
            serde_json::json!([v, risk_inference::classes::CLASS_NAMES[v as usize], r, g, b, a])
        })
        .collect()
}

#[test]
fn every_output_records_its_provenance_and_the_class_map_its_class_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("scene512.tif");
    let (classes, probs, unc) = (d.join("risk.tif"), d.join("p.tif"), d.join("u.tif"));
    ok(&risk_infer(&[
        &"--threads",
        &"1",
        &"-m",
        &model(),
        &input,
        &"-o",
        &classes,
        &"--probs",
        &probs,
        &"--uncertainty",
        &unc,
        &"--tta",
        &"flips",
    ]));
    let today = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let sha = sha256sum(&model());
    for path in [&classes, &probs, &unc] {
        let info = gdalinfo(path);
        let md = &info["metadata"][""];
        let item = |k: &str| {
            md[k]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no {k}: {md}", path.display()))
                .to_string()
        };
        assert_eq!(item("RISK_MODEL_SHA256"), sha, "{}", path.display());
        assert_eq!(
            item("RISK_MODEL"),
            std::path::absolute(model()).unwrap().display().to_string()
        );
        assert_eq!(item("RISK_INPUT"), input.display().to_string());
        assert!(item("RISK_MODEL_VERSION").starts_with("edge-b0"), "{md}");
        assert!(item("RISK_TOOL").starts_with("risk-infer "), "{md}");
        assert!(item("TIFFTAG_SOFTWARE").starts_with("risk-infer "), "{md}");
        assert_eq!(item("RISK_TTA"), "flips");
        assert_eq!(item("RISK_SCALES"), "1");
        assert_eq!(item("RISK_BANDS"), "1,2,3");
        // The shipped model's tile plan and decision rule (risk-infer --info models/default.onnx).
        assert_eq!(item("RISK_TILE"), "128 px, overlap 32 px");
        assert!(item("RISK_DECISION").starts_with("argmax(ln p + b)"), "{md}");
        assert_eq!(item("RISK_CRF"), "off");
        assert_eq!(item("RISK_SHARD"), "none");
        assert!(item("RISK_CREATED_UTC").starts_with(today.trim()), "{md}");
    }
    // The class map's table, as GDAL reads it from the sidecar; the others have none.
    assert_eq!(rat_rows(&gdalinfo(&classes)), expected_rat());
    assert!(classes.with_extension("tif.aux.xml").is_file());
    assert!(gdalinfo(&probs).get("rat").is_none());
    // --info of an output prints both.
    let o = risk_infer(&[&"--info", &classes]);
    ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("RISK_MODEL_SHA256 = {sha}")), "{text}");
    assert!(text.contains("attribute table (band 1, 3 rows)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "Medium", "245", "166", "35", "255"]),
        "{text}"
    );
}

#[test]
fn the_mosaic_keeps_the_class_table_and_says_it_joined_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("scene512.tif");
    let mut parts = Vec::new();
    let mut probs = Vec::new();
    for i in 0..2 {
        let (c, p) = (d.join(format!("c{i}.tif")), d.join(format!("p{i}.tif")));
        let shard = format!("{i}/2");
        ok(&risk_infer(&[
            &"-m",
            &model(),
            &input,
            &"-o",
            &c,
            &"--probs",
            &p,
            &"--shard",
            &shard,
        ]));
        assert_eq!(
            gdalinfo(&c)["metadata"][""]["RISK_SHARD"],
            format!("{i}/2 (rows {}..{})", 256 * i, 256 * (i + 1)).as_str()
        );
        parts.push(c);
        probs.push(p);
    }
    let joined = d.join("joined.tif");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"mosaic", &"-o", &joined];
    args.extend(parts.iter().map(|p| p as &dyn AsRef<std::ffi::OsStr>));
    ok(&risk_infer(&args));
    let info = gdalinfo(&joined);
    assert_eq!(rat_rows(&info), expected_rat());
    assert_eq!(
        info["metadata"][""]["RISK_SHARD"],
        "2 part(s) joined by risk-infer mosaic (first part: 0/2 (rows 0..256))"
    );
    // A mosaic without a table replaces an older file's sidecar: a stale table would
    // describe values the new file does not have.
    let stale = d.join("joined_p.tif.aux.xml");
    std::fs::write(&stale, "<PAMDataset></PAMDataset>").unwrap();
    let joined_p = d.join("joined_p.tif");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"mosaic", &"-o", &joined_p];
    args.extend(probs.iter().map(|p| p as &dyn AsRef<std::ffi::OsStr>));
    ok(&risk_infer(&args));
    assert!(!stale.exists(), "the stale sidecar is gone");
    assert!(gdalinfo(&joined_p).get("rat").is_none());
}
