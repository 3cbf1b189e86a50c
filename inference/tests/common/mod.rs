//! Helpers shared by the `risk-infer` / `risk-crf` end-to-end tests (each test binary uses a subset).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use risk_inference::raster::{InputRaster, PixelType};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A committed test scene under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The names in a folder, sorted (to check that nothing, not even a temporary file, is
/// left behind).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every band of a raster, band-major.
pub fn read_all<T: PixelType + Copy + Default>(path: &Path) -> Vec<T> {
    let r = InputRaster::open(path).unwrap();
    let bands: Vec<usize> = (1..=r.band_count()).collect();
    let mut v = vec![T::default(); bands.len() * r.width() * r.height()];
    r.read_bands(&bands, r.extent(), &mut v).unwrap();
    v
}
