//! What a run did and where its time went: [`RunReport`] for the raster, with
//! [`CrfReport`] for the CRF pass when it runs (serialised into the JSON timings line of
//! `risk-infer`'s debug log).

/// What a run did and where its time went (seconds are summed per stage; reading and
/// writing overlap the model, so they do not add up to the wall time).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunReport {
    pub width: usize,
    pub height: usize,
    pub tiles: usize,
    pub tile: usize,
    pub overlap: usize,
    pub column_blocks: usize,
    pub provider: String,
    /// Tiles per model run (the `--batch auto` choice when probed).
    pub batch: usize,
    /// Model runs per batch (ensemble members x TTA transforms x scales).
    pub views: usize,
    pub read_s: f64,
    pub model_s: f64,
    pub blend_s: f64,
    pub write_s: f64,
    pub total_s: f64,
    /// Pixels per class value 0, 1, 2 and nodata (after the CRF when it runs).
    pub class_counts: [u64; 4],
    /// Class counts of the model's blended probabilities, before the CRF.
    pub class_counts_before_crf: Option<[u64; 4]>,
    /// The CRF pass, when it runs.
    pub crf: Option<CrfReport>,
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
