//! Nodata holes are scored from filled context (`risk_inference::fill`): a raster with a
//! hole and its twin whose hole already holds the nearest valid values give the same
//! probabilities at every valid pixel (the model saw the same input), and the hole itself
//! stays nodata. Before the fill the model saw the raw nodata value (black) there.

mod common;

use std::path::Path;
use std::process::Command;

use common::{fixture, read_all, root, stderr};
use risk_inference::fill::fill_nearest;
use risk_inference::raster::{GeoRef, GeoTiffWriter, InputRaster, PixelType, Window, WriteOptions};

const SIDE: usize = 128;

fn write<T: PixelType + Copy>(path: &Path, data: &[T], nodata: Option<f64>) {
    let georef = GeoRef::north_up(32633, 600_000.0, 5_000_000.0, 2.0).unwrap();
    let opts = WriteOptions {
        nodata,
        ..WriteOptions::default()
    };
    let mut wr = GeoTiffWriter::create::<T>(path, SIDE, SIDE, 3, &georef, opts).unwrap();
    wr.write_bands(Window::new(0, 0, SIDE, SIDE), data).unwrap();
    wr.finish().unwrap();
}

/// Probabilities of a one-tile run (tile = raster: the whole raster is one window).
fn probs(input: &Path, out: &Path) -> Vec<f32> {
    let probs = out.with_extension("probs.tif");
    let o = Command::new(env!("CARGO_BIN_EXE_risk-infer"))
        .args([
            "--quiet",
            "--threads",
            "1",
            "--crf",
            "off",
            "--decision",
            "argmax",
        ])
        .args(["--tile", "128", "--overlap", "32", "--probs-type", "f32"])
        // The float32 twin holds u8-scaled values: the model's own scaling for every input.
        .args(["--input-scale", "model", "--model"])
        .arg(root().join("models/default.onnx"))
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--probs")
        .arg(&probs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    read_all::<f32>(&probs)
}

#[test]
fn a_hole_is_scored_as_if_it_held_its_nearest_valid_values() {
    let dir = tempfile::tempdir().unwrap();
    // A 128 px crop of the fixture without nodata, every value >= 1 (0 becomes nodata).
    let scene = InputRaster::open(fixture("scene512.tif")).unwrap();
    let mut image = vec![0u8; 3 * SIDE * SIDE];
    scene
        .read_bands(&[1, 2, 3], Window::new(300, 300, SIDE, SIDE), &mut image)
        .unwrap();
    image.iter_mut().for_each(|v| *v = (*v).max(1));
    // The hole: columns 0..6 of rows 40..80 (at the left edge), and a block in the middle.
    let hole = |x: usize, y: usize| {
        (x < 6 && (40..80).contains(&y)) || ((60..70).contains(&x) && (20..26).contains(&y))
    };
    // The twin: the hole filled in the file itself by the fill (unit-tested by hand in
    // `fill.rs`) over the whole raster, which is also the single tile's window.
    let valid: Vec<bool> = (0..SIDE * SIDE).map(|i| !hole(i % SIDE, i / SIDE)).collect();
    let mut twin: Vec<f32> = image.iter().map(|&v| v as f32).collect();
    assert!(fill_nearest(&mut twin, SIDE, SIDE, &valid) > 0);
    // (Kept as float32: a filled value may be a mean between two u8 values.)
    for (i, v) in valid.iter().enumerate() {
        if !v {
            for b in 0..3 {
                image[b * SIDE * SIDE + i] = 0;
            }
        }
    }
    let with_hole = dir.path().join("hole.tif");
    let filled = dir.path().join("filled.tif");
    write(&with_hole, &image, Some(0.0));
    write(&filled, &twin, None);
    let p_hole = probs(&with_hole, &dir.path().join("a.tif"));
    let p_filled = probs(&filled, &dir.path().join("b.tif"));
    let n = SIDE * SIDE;
    let mut compared = 0;
    let mut worst = 0f32;
    for i in 0..n {
        let (x, y) = (i % SIDE, i / SIDE);
        if hole(x, y) {
            // The hole stays nodata (-1 in float32 probabilities).
            assert_eq!(p_hole[i], -1.0, "hole pixel ({x}, {y}) is not nodata");
            continue;
        }
        for c in 0..3 {
            worst = worst.max((p_hole[c * n + i] - p_filled[c * n + i]).abs());
        }
        compared += 1;
    }
    assert_eq!(compared, n - valid.iter().filter(|&&v| !v).count());
    // Same input values, same tile: the same model output (float16 model, CPU: exact).
    assert!(
        worst < 1e-6,
        "probabilities differ by up to {worst} next to the hole"
    );
    // And the test can tell: the same black hole, not declared nodata, changes them.
    let black = dir.path().join("black.tif");
    write(&black, &image, None);
    let p_black = probs(&black, &dir.path().join("c.tif"));
    let moved = (0..n)
        .filter(|&i| valid[i])
        .map(|i| {
            (0..3)
                .map(|c| (p_black[c * n + i] - p_filled[c * n + i]).abs())
                .fold(0f32, f32::max)
        })
        .fold(0f32, f32::max);
    assert!(moved > 0.01, "a black hole moved no probability ({moved})");
}
