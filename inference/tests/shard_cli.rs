//! `risk-infer --shard I/N` and `risk-infer mosaic` end to end: the parts of a sharded
//! run, mosaicked, equal the single run pixel for pixel (model pass and CRF pass, with
//! tile rows and CRF tiles straddling the shard boundaries); list sharding; mosaic errors.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, read_all, root, stderr};
use risk_inference::raster::{GeoTiffWriter, InputRaster, Window, WriteOptions};

fn risk_infer(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-infer"));
    cmd.args(["--quiet", "--threads", "1", "--model"])
        .arg(root().join("models/default.onnx"));
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("risk-infer runs")
}

fn mosaic(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-infer"));
    cmd.args(["mosaic"]);
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("risk-infer mosaic runs")
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

/// Runs `input` whole and in 4 shards with `extra` options (class map + f32 probabilities),
/// mosaics the parts and checks both outputs are identical to the whole run, and each
/// part's georeferencing.
fn shards_equal_whole(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("scene700x433.tif");
    let common: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"--probs-type", &"f32", &input];
    let run = |out: &Path, probs: &Path, shard: Option<String>| {
        let mut args = common.clone();
        args.extend([&"-o" as &dyn AsRef<std::ffi::OsStr>, &out, &"--probs", &probs]);
        for e in extra {
            args.push(e);
        }
        let shard_arg;
        if let Some(s) = shard {
            shard_arg = s;
            args.extend([&"--shard" as &dyn AsRef<std::ffi::OsStr>, &shard_arg]);
        }
        ok(&risk_infer(&args));
    };
    run(&d.join("whole.tif"), &d.join("whole_p.tif"), None);
    let (mut classes, mut probs) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let (c, p) = (d.join(format!("part{i}.tif")), d.join(format!("part{i}_p.tif")));
        run(&c, &p, Some(format!("{i}/4")));
        classes.push(c);
        probs.push(p);
    }
    // 433 rows = blocks of 128: parts of 128, 128, 128 and 49 rows, placed where they lie.
    let whole = InputRaster::open(d.join("whole.tif")).unwrap();
    let gt = whole.georef().geo_transform.unwrap();
    for (i, c) in classes.iter().enumerate() {
        let part = InputRaster::open(c).unwrap();
        assert_eq!((part.width(), part.height()), (700, if i < 3 { 128 } else { 49 }));
        let pgt = part.georef().geo_transform.unwrap();
        assert_eq!(pgt[3], gt[3] + (128 * i) as f64 * gt[5], "part {i} origin");
        assert_eq!((pgt[0], pgt[1], pgt[5]), (gt[0], gt[1], gt[5]));
    }
    // Parts given in any order.
    classes.reverse();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = classes.iter().map(|c| c as _).collect();
    let joined = d.join("joined.tif");
    args.extend([&"-o" as &dyn AsRef<std::ffi::OsStr>, &joined]);
    ok(&mosaic(&args));
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = probs.iter().map(|c| c as _).collect();
    let joined_p = d.join("joined_p.tif");
    args.extend([&"-o" as &dyn AsRef<std::ffi::OsStr>, &joined_p]);
    ok(&mosaic(&args));

    let joined_r = InputRaster::open(&joined).unwrap();
    assert_eq!(joined_r.georef(), whole.georef());
    assert_eq!(joined_r.nodata(1).unwrap(), Some(255.0));
    let (a, b): (Vec<u8>, Vec<u8>) = (read_all(&d.join("whole.tif")), read_all(&joined));
    assert_eq!(a.len(), 700 * 433);
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(differ, 0, "{differ} class pixels differ from the single run");
    let (a, b): (Vec<f32>, Vec<f32>) = (read_all(&d.join("whole_p.tif")), read_all(&joined_p));
    assert!(
        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
        "probabilities differ"
    );
}

#[test]
fn four_shards_mosaic_to_the_single_run() {
    // 128 px tiles: tile rows (stride 96) straddle every shard boundary.
    shards_equal_whole(&["--crf", "off", "--tile", "128", "--overlap", "32"]);
}

#[test]
fn four_shards_with_the_crf_mosaic_to_the_single_run() {
    // CRF tiles of 200 px with a 48 px halo: cores of 104 rows, cut by shard boundaries.
    shards_equal_whole(&["--crf", "default", "--crf-tile", "200", "--crf-halo", "48"]);
}

#[test]
fn shard_of_many_inputs_takes_every_nth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = ["a", "b", "c"];
    for n in names {
        std::fs::copy(fixture("scene256_nir_u16.tif"), d.join(format!("{n}.tif"))).unwrap();
    }
    let list = d.join("list.txt");
    std::fs::write(
        &list,
        names.map(|n| format!("{}/{n}.tif\n", d.display())).concat(),
    )
    .unwrap();
    let out = d.join("out");
    ok(&risk_infer(&[
        &"--crf",
        &"off",
        &"--list",
        &list,
        &"--out-dir",
        &out,
        &"--shard",
        &"1/2",
    ]));
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, vec!["b_risk.tif", "b_risk.tif.aux.xml"]);
}

#[test]
fn mosaic_rejects_parts_off_the_grid_and_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("scene700x433.tif");
    let part = d.join("p0.tif");
    ok(&risk_infer(&[
        &"--crf", &"off", &input, &"-o", &part, &"--shard", &"0/4",
    ]));
    let out = d.join("m.tif");
    // The same part twice overlaps itself.
    let o = mosaic(&[&part, &part, &"-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("p0.tif") && err.contains("overlaps"), "{err}");
    // A raster half a pixel off the part's grid (same CRS, pixel size and type).
    let off = d.join("off.tif");
    let georef = InputRaster::open(&part).unwrap().georef().offset(0.5, 200.0);
    let mut w = GeoTiffWriter::create::<u8>(&off, 10, 10, 1, &georef, WriteOptions::default()).unwrap();
    w.write_band(1, Window::new(0, 0, 10, 10), &[0u8; 100]).unwrap();
    w.finish().unwrap();
    let o = mosaic(&[&part, &off, &"-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("off.tif") && err.contains("pixel grid"), "{err}");
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // The two inputs and the part's attribute table sidecar.
    assert_eq!(left.len(), 3, "nothing but the two inputs is left: {left:?}");
}
