//! The outputs stage: [`Writers`] holds the open GeoTIFFs of one run (class map,
//! probabilities, uncertainty) and writes each finished [`RowBand`] into all of them,
//! from the model pass's blend or from the CRF pass. Each output is a
//! [`GeoTiffWriter`], which writes a temporary file and puts it in place only once
//! finished and checked. A shard's outputs hold its rows only, georeferenced where they
//! lie.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::error::Result;
use super::options::{Outputs, ProbsType, RunOptions};
use crate::classes::{NODATA, PALETTE};
use crate::predictor::normalised_entropy;
use crate::raster::{GeoTiffWriter, RasterError, Window, WriteOptions, overview_factors};

/// A finished band of output rows.
pub(super) struct RowBand {
    pub(super) window: Window,
    pub(super) classes: Vec<u8>,
    /// `(3, h, w)`, only when written.
    pub(super) probs: Vec<f32>,
    /// `(h, w)` normalised mutual information, only when written.
    pub(super) mutual_info: Vec<f32>,
    pub(super) valid: Vec<bool>,
}

/// The open output files of one run, covering raster rows `row_offset..` (all rows
/// unless the run is a shard).
pub(super) struct Writers {
    row_offset: usize,
    classes: Option<GeoTiffWriter>,
    probs: Option<(GeoTiffWriter, ProbsType)>,
    uncertainty: Option<(GeoTiffWriter, ProbsType)>,
}

impl Writers {
    /// Opens the outputs; `views` is the predictor's model runs per batch (the
    /// uncertainty raster gets a mutual information band when there are several).
    pub(super) fn create(
        outputs: &Outputs,
        w: usize,
        h: usize,
        georef: &crate::raster::GeoRef,
        opts: &RunOptions,
        views: usize,
    ) -> Result<Self> {
        // A shard's outputs hold its rows only, georeferenced where they lie.
        let (r0, r1) = opts.rows.unwrap_or((0, h));
        let (h, georef) = (r1 - r0, &georef.offset(0.0, r0 as f64));
        let layout = WriteOptions {
            overviews: if opts.overviews {
                overview_factors(w, h)
            } else {
                Vec::new()
            },
            cog: opts.cog,
            metadata: opts.provenance.clone(),
            ..WriteOptions::default()
        };
        let create =
            |path: &PathBuf, bands: usize, float: bool, options: WriteOptions| -> Result<GeoTiffWriter> {
                Ok(if float {
                    GeoTiffWriter::create::<f32>(path, w, h, bands, georef, options)?
                } else {
                    GeoTiffWriter::create::<u8>(path, w, h, bands, georef, options)?
                })
            };
        let classes = outputs
            .classes
            .as_ref()
            .map(|path| create(path, 1, false, class_map_layout(&layout)))
            .transpose()?;
        let probs = outputs
            .probs
            .as_ref()
            .map(|(path, ty)| {
                let options = probs_layout(&layout, *ty);
                create(path, 3, *ty == ProbsType::F32, options).map(|writer| (writer, *ty))
            })
            .transpose()?;
        let uncertainty = outputs
            .uncertainty
            .as_ref()
            .map(|(path, ty)| {
                let options = uncertainty_layout(&layout, *ty, views);
                let bands = options.band_descriptions.len();
                create(path, bands, *ty == ProbsType::F32, options).map(|writer| (writer, *ty))
            })
            .transpose()?;
        Ok(Self {
            row_offset: r0,
            classes,
            probs,
            uncertainty,
        })
    }

    /// Writer thread body: writes every band it receives. Returns the seconds spent, the
    /// class counts and itself, to be finished by the caller.
    pub(super) fn write_all(
        mut self,
        rx: Receiver<RowBand>,
    ) -> std::result::Result<(f64, [u64; 4], Self), RasterError> {
        let mut time = Duration::ZERO;
        let mut counts = [0u64; 4];
        for band in rx {
            let t0 = Instant::now();
            self.write(&band, &mut counts)?;
            time += t0.elapsed();
        }
        Ok((time.as_secs_f64(), counts, self))
    }

    /// Writes one finished band to every output and adds its classes to `counts`.
    pub(super) fn write(
        &mut self,
        band: &RowBand,
        counts: &mut [u64; 4],
    ) -> std::result::Result<(), RasterError> {
        for &c in &band.classes {
            counts[if c == NODATA { 3 } else { c as usize }] += 1;
        }
        let window = Window {
            y: band.window.y - self.row_offset,
            ..band.window
        };
        if let Some(writer) = &mut self.classes {
            writer.write_band(1, window, &band.classes)?;
        }
        let n = band.window.pixels();
        if let Some((writer, ty)) = &mut self.probs {
            write_scores(writer, *ty, window, band, &band.probs)?;
        }
        if let Some((writer, ty)) = &mut self.uncertainty {
            let mut values: Vec<f32> = (0..n)
                .map(|i| normalised_entropy([band.probs[i], band.probs[n + i], band.probs[2 * n + i]]))
                .collect();
            if writer.band_count() == 2 {
                assert_eq!(band.mutual_info.len(), n, "mutual information of {}", band.window);
                values.extend_from_slice(&band.mutual_info);
            }
            write_scores(writer, *ty, window, band, &values)?;
        }
        Ok(())
    }

    pub(super) fn finish(self) -> std::result::Result<(), RasterError> {
        if let Some(w) = self.classes {
            w.finish()?;
        }
        if let Some((w, _)) = self.probs {
            w.finish()?;
        }
        if let Some((w, _)) = self.uncertainty {
            w.finish()?;
        }
        Ok(())
    }
}

/// The class map's layout: nodata 255, the palette, the class table.
fn class_map_layout(layout: &WriteOptions) -> WriteOptions {
    WriteOptions {
        nodata: Some(NODATA as f64),
        color_table: PALETTE.to_vec(),
        band_descriptions: vec!["risk class (0 Low, 1 Medium, 2 High)".into()],
        attribute_table: Some(crate::classes::attribute_table()),
        ..layout.clone()
    }
}

/// Nodata and metadata of a raster of values in [0, 1] (`what`) encoded as `ty`: u8 says
/// its scale first.
fn encoding(layout: &WriteOptions, ty: ProbsType, what: &str) -> (f64, Vec<(String, String)>) {
    match ty {
        ProbsType::U8 => (
            255.0,
            [("SCALE".to_string(), format!("{what} x 255"))]
                .into_iter()
                .chain(layout.metadata.iter().cloned())
                .collect(),
        ),
        ProbsType::F32 => (-1.0, layout.metadata.clone()),
    }
}

/// The probability raster's layout: one band per class.
fn probs_layout(layout: &WriteOptions, ty: ProbsType) -> WriteOptions {
    let (nodata, metadata) = encoding(layout, ty, "probability");
    WriteOptions {
        nodata: Some(nodata),
        band_descriptions: crate::classes::CLASS_NAMES
            .iter()
            .map(|n| format!("P({n})"))
            .collect(),
        metadata,
        ..layout.clone()
    }
}

/// The uncertainty raster's layout: the entropy band, and with several `views` the
/// mutual information band.
fn uncertainty_layout(layout: &WriteOptions, ty: ProbsType, views: usize) -> WriteOptions {
    let (nodata, mut metadata) = encoding(layout, ty, "uncertainty");
    metadata.push(("VIEWS".to_string(), views.to_string()));
    let mut band_descriptions =
        vec!["normalised predictive entropy: H(mean p) / ln 3 (total uncertainty)".to_string()];
    if views > 1 {
        band_descriptions.push(format!(
            "normalised mutual information: (H(mean p) - mean H(p)) / ln 3 over {views} views \
             (epistemic uncertainty: ensemble members x TTA transforms x scales)"
        ));
    }
    WriteOptions {
        nodata: Some(nodata),
        metadata,
        band_descriptions,
        ..layout.clone()
    }
}

/// Writes band-major `values` in [0, 1] (as many bands as the writer has) of `band`
/// into `window` of the output, encoded as `ty`, nodata where the input is nodata.
fn write_scores(
    writer: &mut GeoTiffWriter,
    ty: ProbsType,
    window: Window,
    band: &RowBand,
    values: &[f32],
) -> std::result::Result<(), RasterError> {
    let n = band.window.pixels();
    let valid = |i: usize| band.valid[i % n];
    match ty {
        ProbsType::U8 => {
            let buf: Vec<u8> = values
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    if valid(i) {
                        (p * 255.0).round().min(254.0) as u8
                    } else {
                        255
                    }
                })
                .collect();
            writer.write_bands(window, &buf)
        }
        ProbsType::F32 => {
            let buf: Vec<f32> = values
                .iter()
                .enumerate()
                .map(|(i, &p)| if valid(i) { p } else { -1.0 })
                .collect();
            writer.write_bands(window, &buf)
        }
    }
}
