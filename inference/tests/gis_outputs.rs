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
        assert_eq!(item("RISK_TILE"), "512 px, overlap 64 px");
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

/// A hand-made 40 x 24 class map (EPSG:32633, 10 m pixels): Low background; a High U
/// whose arms cross many row bands and join at the bottom; a 2-pixel Medium speck; two
/// Medium 2x2 squares touching at a corner; a nodata block at the bottom edge holding one
/// High pixel.
fn paint_map(path: &Path) -> Vec<u8> {
    use risk_inference::raster::{GeoRef, GeoTiffWriter, Window, WriteOptions};
    let (w, h) = (40, 24);
    let mut m = vec![0u8; w * h];
    let mut set = |x0: usize, x1: usize, y0: usize, y1: usize, v: u8| {
        for y in y0..y1 {
            for x in x0..x1 {
                m[y * w + x] = v;
            }
        }
    };
    set(4, 6, 2, 20, 2);
    set(14, 16, 2, 20, 2);
    set(4, 16, 18, 20, 2);
    set(30, 32, 5, 6, 1);
    set(30, 32, 10, 12, 1);
    set(32, 34, 12, 14, 1);
    set(20, 28, 20, 24, 255);
    set(24, 25, 22, 23, 2);
    let georef = GeoRef::north_up(32633, 500_000.0, 5_200_000.0, 10.0).unwrap();
    let opts = WriteOptions {
        nodata: Some(255.0),
        ..WriteOptions::default()
    };
    let mut wr = GeoTiffWriter::create::<u8>(path, w, h, 1, &georef, opts).unwrap();
    wr.write_band(1, Window::new(0, 0, w, h), &m).unwrap();
    wr.finish().unwrap();
    m
}

/// Per feature of a vector file, read with OGR: (class, pixels, geometry area).
fn features(path: &Path) -> Vec<(i32, i64, f64)> {
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(path).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let (c, p) = {
        let defn = layer.defn();
        (
            defn.field_index("class").unwrap(),
            defn.field_index("pixels").unwrap(),
        )
    };
    layer
        .features()
        .map(|f| {
            (
                f.field_as_integer(c).unwrap().unwrap(),
                f.field_as_integer64(p).unwrap().unwrap(),
                f.geometry().unwrap().area(),
            )
        })
        .collect()
}

/// Features per class and their summed geometry area per class.
fn per_class(f: &[(i32, i64, f64)]) -> ([usize; 3], [f64; 3]) {
    let (mut n, mut a) = ([0; 3], [0.0; 3]);
    for &(c, _, area) in f {
        n[c as usize] += 1;
        a[c as usize] += area;
    }
    (n, a)
}

fn ogrinfo_count(path: &Path) -> usize {
    let o = Command::new("ogrinfo")
        .args(["-al", "-so"])
        .arg(path)
        .output()
        .expect("ogrinfo runs");
    assert!(o.status.success(), "ogrinfo {}: {}", path.display(), stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("Feature Count:"))
        .unwrap_or_else(|| panic!("{text}"));
    line["Feature Count:".len()..].trim().parse().unwrap()
}

#[test]
fn zones_are_connected_components_whose_areas_sum_to_the_pixels() {
    use risk_inference::vector::{ZoneOptions, write_zones};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let map = d.join("map.tif");
    let m = paint_map(&map);
    let count = |v: u8| m.iter().filter(|&&c| c == v).count() as f64;
    let pixel_area = 100.0;
    // Rows streamed 4 at a time: the U's arms cross 4 band boundaries before they meet.
    let opts = ZoneOptions {
        band_rows: 4,
        ..ZoneOptions::default()
    };
    let out = d.join("zones.gpkg");
    let r = write_zones(&map, &out, &opts).unwrap();
    assert_eq!(r.area_field, "area_m2");
    // Low: the background; Medium: the speck and two squares; High: the U and the pixel
    // in the nodata block.
    assert_eq!(r.zones, [1, 3, 2]);
    assert_eq!(ogrinfo_count(&out), 6);
    let f = features(&out);
    let (n, area) = per_class(&f);
    assert_eq!(n, [1, 3, 2]);
    for c in 0..3u8 {
        assert!(
            (area[c as usize] - count(c) * pixel_area).abs() < 1e-6,
            "class {c}: {area:?}"
        );
    }
    // The U is one feature of all its pixels: 2 arms of 2x18 and the 8x2 between them.
    assert!(
        f.iter()
            .any(|&(c, p, a)| c == 2 && p == 2 * 2 * 18 + 8 * 2 && (a - p as f64 * pixel_area).abs() < 1e-6),
        "{f:?}"
    );

    // 8-connected: the squares touching at a corner are one zone.
    let out8 = d.join("zones8.geojson");
    let r = write_zones(
        &map,
        &out8,
        &ZoneOptions {
            eight_connected: true,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(r.zones, [1, 2, 2]);
    assert_eq!(ogrinfo_count(&out8), 5);
    assert!(features(&out8).iter().any(|&(c, p, _)| c == 1 && p == 8));

    // --min-area 3: the 2-pixel speck joins the background, the pixel inside nodata has
    // no neighbour and is dropped; polygons hold exactly the remaining pixels.
    let out3 = d.join("zones3.gpkg");
    // A stale SQLite journal beside the final name would be replayed into the new file:
    // it goes when the output is put in place.
    std::fs::write(d.join("zones3.gpkg-journal"), b"stale").unwrap();
    let r = write_zones(&map, &out3, &ZoneOptions { min_area: 3, ..opts }).unwrap();
    assert_eq!((r.zones, r.dropped), ([1, 2, 1], 1));
    let (n, area) = per_class(&features(&out3));
    assert_eq!(n, [1, 2, 1]);
    assert!((area[0] - (count(0) + 2.0) * pixel_area).abs() < 1e-6);
    assert!((area[1] - (count(1) - 2.0) * pixel_area).abs() < 1e-6);
    assert!((area[2] - (count(2) - 1.0) * pixel_area).abs() < 1e-6);
    // Only the outputs are left (the sieved copy, zone ids and polygons were temporary).
    assert_eq!(
        common::files_in(d),
        ["map.tif", "zones.gpkg", "zones3.gpkg", "zones8.geojson"]
    );
}

#[test]
fn vector_zones_of_a_run_and_of_a_sharded_mosaic_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("scene700x433.tif");
    let (whole, probs, zones) = (d.join("whole.tif"), d.join("p.tif"), d.join("whole.gpkg"));
    ok(&risk_infer(&[
        &"--threads",
        &"1",
        &"-m",
        &model(),
        &input,
        &"-o",
        &whole,
        &"--probs",
        &probs,
        &"--vector",
        &zones,
    ]));
    let mut parts = Vec::new();
    let mut prob_parts = Vec::new();
    for i in 0..2 {
        let (part, prob) = (d.join(format!("part{i}.tif")), d.join(format!("part{i}_p.tif")));
        let shard = format!("{i}/2");
        ok(&risk_infer(&[
            &"--threads",
            &"1",
            &"-m",
            &model(),
            &input,
            &"-o",
            &part,
            &"--probs",
            &prob,
            &"--shard",
            &shard,
        ]));
        parts.push(part);
        prob_parts.push(prob);
    }
    let joined_p = d.join("joined_p.tif");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"mosaic", &"-o", &joined_p];
    args.extend(prob_parts.iter().map(|p| p as &dyn AsRef<std::ffi::OsStr>));
    ok(&risk_infer(&args));
    let (joined, joined_zones) = (d.join("joined.tif"), d.join("joined.gpkg"));
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"mosaic",
        &"-o",
        &joined,
        &"--vector",
        &joined_zones,
        &"--probs",
        &joined_p,
    ];
    args.extend(parts.iter().map(|p| p as &dyn AsRef<std::ffi::OsStr>));
    ok(&risk_infer(&args));
    // The GeoPackage records the map's provenance and what it was made from.
    let o = Command::new("ogrinfo").arg("-so").arg(&zones).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("RISK_MODEL_SHA256={}", sha256sum(&model()))),
        "{text}"
    );
    assert!(
        text.contains("RISK_DERIVED=zones (4-connected, minimum 1 px) of "),
        "{text}"
    );
    // Per class, the polygons' areas are the class map's pixels x 100 m^2.
    let classes: Vec<u8> = common::read_all(&whole);
    let f = features(&zones);
    let (n, area) = per_class(&f);
    for c in 0..3u8 {
        let pixels = classes.iter().filter(|&&v| v == c).count() as f64;
        assert!(
            (area[c as usize] - pixels * 100.0).abs() < 1e-3,
            "class {c}: {area:?} vs {pixels} px"
        );
    }
    // The mosaic's zones are the run's: the shards' boundary (row 256) cuts none.
    let g = features(&joined_zones);
    assert_eq!(per_class(&g).0, n);
    let mut a: Vec<i64> = f.iter().map(|x| x.1).collect();
    let mut b: Vec<i64> = g.iter().map(|x| x.1).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "zone sizes");
    assert!(
        a.iter().any(|&p| p > 256 * 700),
        "a zone larger than a shard spans the boundary: {a:?}"
    );
    // With --probs, each zone's mean probability of its class, in (0.3, 1] (the decision
    // rule's offsets can pick a class a little under 1/3); the mosaic's, from the joined
    // probabilities, are the run's.
    let mean_probs = |path: &Path| {
        use gdal::vector::LayerAccess;
        let ds = gdal::Dataset::open(path).unwrap();
        let mut layer = ds.layer(0).unwrap();
        let (k, n) = (
            layer.defn().field_index("mean_prob").unwrap(),
            layer.defn().field_index("pixels").unwrap(),
        );
        let mut v: Vec<(i64, f64)> = layer
            .features()
            .map(|f| {
                (
                    f.field_as_integer64(n).unwrap().unwrap(),
                    f.field_as_double(k).unwrap().unwrap(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    };
    let (mine, joined_means) = (mean_probs(&zones), mean_probs(&joined_zones));
    // Probabilities of the zone's own class (the decision rule may pick a class below 1/3).
    assert!(mine.iter().all(|&(_, p)| p > 0.0 && p <= 1.0), "{mine:?}");
    assert_eq!(mine, joined_means);
    // A bad extension is a usage error before any work.
    let o = risk_infer(&[
        &"-m",
        &model(),
        &input,
        &"-o",
        &d.join("x.tif"),
        &"--vector",
        &d.join("z.shp"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("z.shp") && !d.join("x.tif").exists(),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_review_queue_ranks_windows_by_medium_doubt_and_reads_back() {
    use risk_inference::raster::{GeoRef, GeoTiffWriter, InputRaster, Window, WriteOptions};
    use risk_inference::review::{keep_windows, rank_windows, read_windows, write_queue};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 64 x 64 probabilities: sure Low everywhere but a 16 x 16 block torn between Low
    // and Medium at (40, 8) and a weaker 8 x 8 one at (4, 44).
    let (w, h) = (64, 64);
    let mut p = vec![0f32; 3 * w * h];
    for i in 0..w * h {
        let (x, y) = (i % w, i / w);
        let v = if (40..56).contains(&x) && (8..24).contains(&y) {
            [0.45, 0.45, 0.1]
        } else if (4..12).contains(&x) && (44..52).contains(&y) {
            [0.7, 0.3, 0.0]
        } else {
            [0.98, 0.01, 0.01]
        };
        for c in 0..3 {
            p[c * w * h + i] = v[c];
        }
    }
    let georef = GeoRef::north_up(32633, 500_000.0, 5_200_000.0, 10.0).unwrap();
    let probs = d.join("p.tif");
    let mut wr = GeoTiffWriter::create::<f32>(&probs, w, h, 3, &georef, WriteOptions::default()).unwrap();
    wr.write_bands(Window::new(0, 0, w, h), &p).unwrap();
    wr.finish().unwrap();
    let queue = rank_windows(&probs, None, 2, 16).unwrap();
    assert_eq!(queue.len(), 2);
    assert_eq!(queue[0].window, Window::new(40, 8, 16, 16));
    // P(Medium) x normalised entropy of (0.45, 0.45, 0.1), by hand.
    let hn = -(2.0 * 0.45 * 0.45f64.ln() + 0.1 * 0.1f64.ln()) / 3f64.ln();
    assert!((queue[0].score - 0.45 * hn).abs() < 1e-6, "{queue:?}");
    assert!((queue[0].mean_p_medium - 0.45).abs() < 1e-6);
    // The second holds the weaker block and overlaps nothing taken.
    let second = queue[1].window;
    assert!(
        second.intersect(&Window::new(4, 44, 8, 8)) == Some(Window::new(4, 44, 8, 8)),
        "{second}"
    );
    assert!(queue[1].score < queue[0].score);
    // Written as rectangles in the CRS, read back as the same pixel windows.
    let q = d.join("q.gpkg");
    write_queue(&q, &queue, &georef, &[("RISK_TOOL".into(), "test".into())]).unwrap();
    assert_eq!(ogrinfo_count(&q), 2);
    let back = read_windows(&q, &georef, w, h).unwrap();
    assert_eq!(back, vec![queue[0].window, queue[1].window]);
    // A class map kept to the windows: nodata elsewhere.
    let map = d.join("map.tif");
    let mut wr = GeoTiffWriter::create::<u8>(&map, w, h, 1, &georef, WriteOptions::default()).unwrap();
    wr.write_band(1, Window::new(0, 0, w, h), &vec![1u8; w * h])
        .unwrap();
    wr.finish().unwrap();
    let kept = d.join("kept.tif");
    keep_windows(&map, &back, &kept).unwrap();
    let v: Vec<u8> = common::read_all(&kept);
    assert_eq!(v.iter().filter(|&&c| c == 1).count(), 2 * 16 * 16);
    assert_eq!(InputRaster::open(&kept).unwrap().width(), w);
}

#[test]
fn risk_infer_review_writes_a_ranked_queue_that_risk_eval_scores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("scene512.tif");
    let (risk, queue) = (d.join("risk.tif"), d.join("queue.gpkg"));
    ok(&risk_infer(&[
        &"--threads",
        &"1",
        &"-m",
        &model(),
        &input,
        &"-o",
        &risk,
        &"--review",
        &"3",
        &queue,
        &"--review-size",
        &"64",
    ]));
    // The probabilities it ranked from were temporary.
    assert_eq!(
        common::files_in(d),
        ["queue.gpkg", "risk.tif", "risk.tif.aux.xml"]
    );
    assert_eq!(ogrinfo_count(&queue), 3);
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(&queue).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let (r, s) = (
        layer.defn().field_index("rank").unwrap(),
        layer.defn().field_index("score").unwrap(),
    );
    let rows: Vec<(i32, f64)> = layer
        .features()
        .map(|f| {
            (
                f.field_as_integer(r).unwrap().unwrap(),
                f.field_as_double(s).unwrap().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(rows.windows(2).all(|x| x[0].1 >= x[1].1), "{rows:?}");
    // risk-eval on the queue's windows scores at most their 3 x 64 x 64 pixels.
    let out = d.join("eval");
    let o = Command::new(env!("CARGO_BIN_EXE_risk-eval"))
        .args([
            risk.as_os_str(),
            "--truth".as_ref(),
            fixture("scene512_labels.tif").as_os_str(),
        ])
        .args([
            "--windows".as_ref(),
            queue.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
        .output()
        .unwrap();
    ok(&o);
    let m: Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    let px = m["pixels"].as_u64().unwrap();
    assert!(px > 0 && px <= 3 * 64 * 64, "{px}");
    assert_eq!(px + m["nodata_pixels"].as_u64().unwrap(), 512 * 512);
}
