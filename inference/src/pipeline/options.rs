//! What one run is asked to do: [`RunOptions`] (tiling, batches, memory budget, bands,
//! CRF, decision rule, rows, provenance), [`CrfOptions`] (the CRF's settings, also read
//! from a model's `risk.crf` metadata) and [`Outputs`] (which rasters to write, in which
//! pixel type). Plain data: every stage reads them, none changes them.

use std::path::PathBuf;

use crate::autobatch::BatchSize;
use crate::crf::CrfParams;
use crate::decision::Decision;
use crate::input_scale::InputScale;

/// How to run one raster.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Tile side in pixels (default: the model's `risk.tile_size`).
    pub tile: Option<usize>,
    /// Overlap in pixels (default: the model's `risk.tile_overlap`).
    pub overlap: Option<usize>,
    /// Tiles per model run, or `auto` ([`crate::autobatch`]).
    pub batch: BatchSize,
    /// Memory budget in bytes for the pipeline's buffers ([`super::budget`]).
    pub memory_budget: usize,
    /// Widest column block in pixels (bounds memory on very wide rasters).
    pub max_block_width: usize,
    /// Input bands (1-based) instead of the model's `risk.bands`.
    pub bands: Option<Vec<usize>>,
    /// Build overviews (factors 2, 4, 8, ... while the overview's long side is at least
    /// 256 px; with `cog`, the COG driver's own choice).
    pub overviews: bool,
    /// Write Cloud Optimized GeoTIFFs.
    pub cog: bool,
    /// Dense CRF refinement of the blended probabilities (off when `None`).
    pub crf: Option<CrfOptions>,
    /// How probabilities become classes (the model's `risk.decision`, or the argmax),
    /// applied to the blended probabilities, or to the CRF's marginals when it runs.
    pub decision: Decision,
    /// Write only raster rows `[r0, r1)` (a shard, see [`crate::shard`]); the outputs
    /// cover those rows, georeferenced where they lie, with the values of a whole run.
    pub rows: Option<(usize, usize)>,
    /// How raw values are scaled when the raster's type is not the model's
    /// ([`crate::input_scale`]).
    pub input_scale: InputScale,
    /// Metadata items written into every output (the run's [`crate::provenance`]).
    pub provenance: Vec<(String, String)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            tile: None,
            overlap: None,
            batch: BatchSize::Tiles(4),
            memory_budget: 2 << 30,
            max_block_width: 8192,
            bands: None,
            overviews: false,
            cog: false,
            crf: None,
            decision: Decision::default(),
            rows: None,
            input_scale: InputScale::default(),
            provenance: Vec::new(),
        }
    }
}

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

    /// The provenance entry: `<preset>: 5 iterations, ..., CRF tile 8192 px halo 256 px`.
    pub fn provenance(&self, preset: &str) -> String {
        format!(
            "{preset}: {}, CRF tile {} px halo {} px",
            self.describe(),
            self.tile,
            self.halo
        )
    }
}

/// A model's `risk.crf` metadata that names no CRF.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CrfMetadataError {
    /// A JSON object that does not parse into [`CrfParams`].
    #[error("risk.crf JSON: {0}")]
    Json(String),
    /// An unknown preset, or parameters out of range.
    #[error("{0}")]
    Invalid(String),
}

/// CRF parameters from a model's `risk.crf` metadata: `off`, a preset name (`default`,
/// `enhanced`) or a JSON object with every [`CrfParams`] field. `Ok(None)` means off.
pub fn params_from_metadata(value: &str) -> Result<Option<CrfParams>, CrfMetadataError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let invalid = |e: crate::crf::CrfError| CrfMetadataError::Invalid(e.to_string());
    if v.starts_with('{') {
        let params: CrfParams = serde_json::from_str(v).map_err(|e| CrfMetadataError::Json(e.to_string()))?;
        params.validate().map_err(invalid)?;
        return Ok(Some(params));
    }
    CrfParams::preset(v).map(Some).map_err(invalid)
}

/// Pixel type of the optional probability and uncertainty rasters (values in [0, 1]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbsType {
    /// Value x 255, rounded, at most 254 (255 is nodata, set only where the input is
    /// nodata).
    U8,
    /// Values as float32, nodata -1.
    F32,
}

/// Output files of one run.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The class map: uint8 0/1/2, 255 nodata (`None` only inside the pipeline, for the
    /// CRF's first pass).
    pub classes: Option<PathBuf>,
    /// Optional 3-band class probabilities.
    pub probs: Option<(PathBuf, ProbsType)>,
    /// Optional uncertainty in [0, 1]: band 1 the normalised predictive entropy; with
    /// several views (ensemble members, TTA transforms, scales) band 2 the normalised
    /// mutual information (see [`crate::predictor`]).
    pub uncertainty: Option<(PathBuf, ProbsType)>,
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
}
