//! The dense CRF pass of `risk-infer`: refines blended model probabilities over a raster
//! of any size, tile by tile, in bounded memory.
//!
//! The model pass ([`crate::engine`]) writes the blended probabilities to a temporary
//! float32 GeoTIFF (nodata -1). This pass cuts the raster into CRF tiles
//! ([`crate::crf::tile_plan`]: cores plus a 256 px halo, so that the result inside a core
//! does not depend on the cut), reads each tile's colour bands and probabilities,
//! runs [`crate::crf::dense_crf_in_place`] and writes only the core's classes (and CRF
//! marginals for `--probs` / `--uncertainty`; the mutual information band of
//! `--uncertainty`, which measures how the model's views disagree, is the model pass's,
//! read back from its temporary raster). The CRF tile side is the smaller of
//! `--crf-tile` and what the memory budget allows at [`CRF_BYTES_PER_PIXEL`].
//!
//! Colour space of the bilateral kernel: 8-bit bands are used as they are (as
//! pydensecrf); other pixel types get a per-band 2-98 percentile stretch to 0..255
//! ([`crate::crf::BandStretch`]), computed once per raster from a decimated read of at
//! most 1024 x 1024 pixels, so that it does not depend on the tiling.
//!
//! A shard writing rows `[r0, r1)` runs the CRF tiles whose cores meet those rows, over
//! the blended rows [`rows_needed`] names (their extents), so its rows equal the whole run.

use std::path::Path;
use std::time::Instant;

use crate::classes::{NODATA, NUM_CLASSES};
use crate::crf::{self, BandStretch, CrfParams, CrfTile, CrfTiling};
use crate::engine::{EngineError, EngineOptions, Outputs, Result, RowBand, Writers};
use crate::raster::{InputRaster, Window};

/// Peak memory of the CRF per tile pixel, whole process (measured with `risk-crf`; see
/// the `crf` module docs).
pub const CRF_BYTES_PER_PIXEL: usize = 170;

/// CRF settings of a run.
#[derive(Clone, Debug)]
pub struct CrfOptions {
    pub params: CrfParams,
    /// Largest CRF tile side (default 8192), reduced to fit the memory budget.
    pub tile: usize,
    /// Halo around each CRF tile core, dropped after the CRF (default 256).
    pub halo: usize,
    /// Input bands (1-based) that form the bilateral kernel's colour space.
    pub bands: [usize; 3],
}

impl CrfOptions {
    /// `5 iterations, Gaussian sxy 3 compat 3, ..., colour bands [1, 2, 3]` (the run's log
    /// line and the outputs' provenance).
    pub fn describe(&self) -> String {
        let p = &self.params;
        format!(
            "{} iterations, Gaussian sxy {} compat {}, bilateral sxy {} srgb {} compat {}, label compatibility {}, colour bands {:?}",
            p.iterations,
            p.gaussian_sxy,
            p.gaussian_compat,
            p.bilateral_sxy,
            p.bilateral_srgb,
            p.bilateral_compat,
            p.compat,
            self.bands
        )
    }
}

/// What the CRF pass did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CrfReport {
    pub tiles: usize,
    pub tile: usize,
    pub crf_s: f64,
    /// Pixels per class value 0, 1, 2 and nodata after the CRF.
    pub class_counts: [u64; 4],
}

/// CRF parameters from a model's `risk.crf` metadata: `off`, a preset name (`default`,
/// `enhanced`) or a JSON object with every [`CrfParams`] field. `Ok(None)` means off.
pub fn params_from_metadata(value: &str) -> std::result::Result<Option<CrfParams>, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if v.starts_with('{') {
        let params: CrfParams = serde_json::from_str(v).map_err(|e| format!("risk.crf JSON: {e}"))?;
        params.validate().map_err(|e| e.to_string())?;
        return Ok(Some(params));
    }
    CrfParams::preset(v).map(Some).map_err(|e| e.to_string())
}

/// The CRF tile side for a memory budget: the requested side, shrunk to what the budget
/// holds but never below twice the halo plus 64 px of core. A requested side is never
/// enlarged (one too small for its halo is refused by [`crf::tile_plan`]).
pub fn tile_for_budget(requested: usize, halo: usize, memory_budget: usize) -> usize {
    let fits = ((memory_budget / CRF_BYTES_PER_PIXEL) as f64).sqrt() as usize;
    requested.min(fits.max(2 * halo + 64))
}

/// The CRF tiles of a `width x height` raster for these options and budget.
fn plan_tiles(
    width: usize,
    height: usize,
    crf_opts: &CrfOptions,
    memory_budget: usize,
) -> std::result::Result<(CrfTiling, Vec<CrfTile>), String> {
    let tiling = CrfTiling {
        tile: tile_for_budget(crf_opts.tile, crf_opts.halo, memory_budget),
        halo: crf_opts.halo,
    };
    let plan = crf::tile_plan(width, height, &tiling).map_err(|e| e.to_string())?;
    Ok((tiling, plan))
}

/// The raster rows the CRF pass reads to write rows `[r0, r1)`: the extents (halo
/// included) of every CRF tile whose core meets them. The model pass blends these rows.
pub(crate) fn rows_needed(
    width: usize,
    height: usize,
    crf_opts: &CrfOptions,
    memory_budget: usize,
    (r0, r1): (usize, usize),
) -> std::result::Result<(usize, usize), String> {
    let (_, plan) = plan_tiles(width, height, crf_opts, memory_budget)?;
    let meets = |t: &&CrfTile| t.core.y < r1 && t.core.bottom() > r0;
    let e0 = plan.iter().filter(meets).map(|t| t.ext.y).min().unwrap_or(r0);
    let e1 = plan
        .iter()
        .filter(meets)
        .map(|t| t.ext.bottom())
        .max()
        .unwrap_or(r1);
    Ok((e0, e1))
}

/// The model pass's temporary rasters that the CRF pass reads, both holding the
/// raster's rows from `first_row` on.
pub(crate) struct ModelPass<'a> {
    /// 3-band float32 blended probabilities, nodata -1.
    pub(crate) probs: &'a Path,
    /// 2-band float32 uncertainty, when its mutual information band is passed on.
    pub(crate) uncertainty: Option<&'a Path>,
    pub(crate) first_row: usize,
}

/// Runs the CRF over the model pass's blended probabilities of `input` and writes rows
/// `[r0, r1)` of `outputs`, the classes by the run's decision rule from the CRF's
/// marginals (`opts`: the run's memory budget and decision rule).
pub(crate) fn run_crf(
    input: &Path,
    pass: ModelPass,
    outputs: &Outputs,
    crf_opts: &CrfOptions,
    opts: &EngineOptions,
    (r0, r1): (usize, usize),
    writers: Writers,
) -> Result<CrfReport> {
    let (decision, memory_budget) = (&opts.decision, opts.memory_budget);
    let start = Instant::now();
    let image = InputRaster::open(input)?;
    let probs = InputRaster::open(pass.probs)?;
    let model_uncertainty = pass.uncertainty.map(InputRaster::open).transpose()?;
    let blended_row = pass.first_row;
    let (w, h) = (image.width(), image.height());
    let input_err = |msg: String| EngineError::Input {
        path: input.to_path_buf(),
        msg,
    };
    if let Some(&b) = crf_opts.bands.iter().find(|&&b| b > image.band_count()) {
        return Err(input_err(format!(
            "has {} band(s); the CRF colour band {b} is missing",
            image.band_count()
        )));
    }
    let stretch = colour_stretch(&image, &crf_opts.bands)?;
    let (tiling, mut plan) = plan_tiles(w, h, crf_opts, memory_budget).map_err(input_err)?;
    plan.retain(|t| t.core.y < r1 && t.core.bottom() > r0);
    let mut report = CrfReport {
        tiles: plan.len(),
        tile: tiling.tile,
        ..CrfReport::default()
    };
    let mut writers = writers;
    let want_probs = outputs.probs.is_some() || outputs.uncertainty.is_some();
    for t in &plan {
        let (e, core) = (t.ext, t.core);
        let n = e.pixels();
        // Colour, (H, W, 3) interleaved.
        let mut bands = vec![0f32; 3 * n];
        image.read_bands(&crf_opts.bands, e, &mut bands)?;
        let rgb = match &stretch {
            Some(s) => s.apply([&bands[..n], &bands[n..2 * n], &bands[2 * n..]]),
            None => (0..3 * n).map(|i| bands[(i % 3) * n + i / 3] as u8).collect(),
        };
        drop(bands);
        // Probabilities -> unary -> Q, (3, H, W); nodata pixels get a uniform unary.
        let mut q = vec![0f32; NUM_CLASSES * n];
        let e_blended = Window {
            y: e.y - blended_row,
            ..e
        };
        probs.read_bands(&[1, 2, 3], e_blended, &mut q)?;
        let valid: Vec<bool> = q[..n].iter().map(|&p| p >= 0.0).collect();
        for (i, v) in valid.iter().enumerate() {
            if !v {
                for c in 0..NUM_CLASSES {
                    q[c * n + i] = 1.0 / NUM_CLASSES as f32;
                }
            }
        }
        let crf_err = |err: crf::CrfError| input_err(format!("CRF on window {e}: {err}"));
        crf::unary_from_probs_in_place(&mut q, e.width, e.height).map_err(crf_err)?;
        crf::dense_crf_in_place(&rgb, &mut q, e.width, e.height, &crf_opts.params).map_err(crf_err)?;
        // Keep the core's rows in [r0, r1).
        let top = core.y.max(r0);
        let core = Window::new(core.x, top, core.width, core.bottom().min(r1) - top);
        let (cx, cy) = (core.x - e.x, core.y - e.y);
        let cn = core.pixels();
        let mut band = RowBand {
            window: core,
            classes: vec![0u8; cn],
            probs: if want_probs {
                vec![0f32; NUM_CLASSES * cn]
            } else {
                Vec::new()
            },
            mutual_info: Vec::new(),
            valid: vec![false; cn],
        };
        if let Some(u) = &model_uncertainty {
            band.mutual_info = vec![0f32; cn];
            let in_blended = Window {
                y: core.y - blended_row,
                ..core
            };
            u.read_band(2, in_blended, &mut band.mutual_info)?;
        }
        for y in 0..core.height {
            for x in 0..core.width {
                let (i, s) = (y * core.width + x, (cy + y) * e.width + cx + x);
                band.valid[i] = valid[s];
                if !valid[s] {
                    band.classes[i] = NODATA;
                    continue;
                }
                let p = [q[s], q[n + s], q[2 * n + s]];
                band.classes[i] = decision.class(&p);
                if want_probs {
                    for (c, &v) in p.iter().enumerate() {
                        band.probs[c * cn + i] = v;
                    }
                }
            }
        }
        writers.write(&band, &mut report.class_counts)?;
    }
    writers.finish()?;
    report.crf_s = start.elapsed().as_secs_f64();
    Ok(report)
}

/// `None` for 8-bit colour bands; else the 2-98 percentile stretch from a decimated read.
fn colour_stretch(image: &InputRaster, bands: &[usize; 3]) -> Result<Option<BandStretch>> {
    let mut all_byte = true;
    for &b in bands {
        all_byte &= image.band_type_name(b)? == "Byte";
    }
    if all_byte {
        return Ok(None);
    }
    let f = (image.width().max(image.height()) as f64 / 1024.0).max(1.0);
    let size = (
        ((image.width() as f64 / f) as usize).max(1),
        ((image.height() as f64 / f) as usize).max(1),
    );
    let mut samples = vec![vec![0f32; size.0 * size.1]; 3];
    for (s, &b) in samples.iter_mut().zip(bands) {
        image.read_band_resampled(b, image.extent(), size, s)?;
    }
    let nodata = image.nodata(bands[0])?.map(|v| v as f32);
    Ok(Some(BandStretch::from_bands(
        [&samples[0], &samples[1], &samples[2]],
        nodata,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_presets_or_full_parameters() {
        assert_eq!(params_from_metadata("off"), Ok(None));
        assert_eq!(params_from_metadata("enhanced"), Ok(Some(CrfParams::ENHANCED)));
        let json = r#"{"iterations": 2, "gaussian_sxy": 3, "gaussian_compat": 1, "bilateral_sxy": 50,
            "bilateral_srgb": 10, "bilateral_compat": 4}"#;
        let p = params_from_metadata(json).unwrap().unwrap();
        assert_eq!(
            (p.iterations, p.bilateral_sxy, p.bilateral_compat),
            (2, 50.0, 4.0)
        );
        assert_eq!(p.compat, crate::crf::LabelCompat::Potts, "Potts unless said");
        let ordinal = json.replace(
            "\"bilateral_compat\": 4",
            "\"bilateral_compat\": 4, \"compat\": \"ordinal\"",
        );
        let p = params_from_metadata(&ordinal).unwrap().unwrap();
        assert_eq!(p.compat, crate::crf::LabelCompat::Ordinal);
        let matrix = json.replace(
            "\"bilateral_compat\": 4",
            "\"bilateral_compat\": 4, \"compat\": {\"matrix\": [[0, 1, 2], [1, 0, 1], [2, 1, 0]]}",
        );
        let p = params_from_metadata(&matrix).unwrap().unwrap();
        assert_eq!(p.compat.costs(), crate::crf::LabelCompat::Ordinal.costs());
        assert!(params_from_metadata(r#"{"iterations": 2}"#).is_err());
        assert!(params_from_metadata("strong").is_err());
    }

    #[test]
    fn crf_tile_shrinks_to_the_budget() {
        assert_eq!(tile_for_budget(8192, 256, 64 << 30), 8192);
        // 2 GiB / 170 B = 12.6 Mpx -> 3554 px a side.
        assert_eq!(tile_for_budget(8192, 256, 2 << 30), 3554);
        assert_eq!(tile_for_budget(1000, 256, 2 << 30), 1000);
        // Never below twice the halo plus 64 px of core.
        assert_eq!(tile_for_budget(8192, 256, 1 << 20), 576);
        // A requested side is not enlarged.
        assert_eq!(tile_for_budget(100, 256, 2 << 30), 100);
    }
}
