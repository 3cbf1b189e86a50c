//! The labelling queue: the windows of a scored raster where the model is least sure
//! about Medium, ranked, for annotators (the source pipeline's next step: "focus
//! labeling effort on misclassified Class 1 regions").
//!
//! Each pixel scores `P(Medium) x (H + MI)`: the predicted Medium probability times the
//! normalised predictive entropy `H` (from the probabilities; 0 where one class is
//! certain, 1 where all three are equal) plus, when the run had several views (ensemble,
//! TTA, scales), the normalised mutual information `MI` between them (the part of the
//! doubt that more data would remove). A pixel the model calls Medium with confidence
//! scores low, and so does an uncertain pixel where Medium is not in play; Medium's
//! boundary zones, where its errors are, score high.
//!
//! A window's score is the mean over its pixels with data; windows with less than half
//! of their pixels with data are skipped. Candidates are `size` x `size` windows on a
//! grid of a quarter of the size (cells are summed in one streaming pass over row bands,
//! so memory is the grid of cells, not the raster); the queue takes the best candidate,
//! then the best that overlaps none taken, and so on, `count` times.
//!
//! The queue is a vector file (`.gpkg` / `.geojson`, as [`crate::vector`]) of rectangles
//! in the raster's CRS with fields `rank`, `score`, `mean_p_medium`, `mean_entropy`,
//! `mean_mi`, and the pixel window (`col`, `row`, `width`, `height`); [`read_windows`]
//! reads it back as pixel windows of a raster on the same grid (`risk-eval --windows`).
//!
//! Errors ([`ReviewError`]) name the file they concern and keep GDAL's message.

use std::path::{Path, PathBuf};

use gdal::vector::{Feature, Geometry, LayerAccess, LayerOptions, OGRFieldType};
use gdal::{Dataset, DriverManager};

use crate::classes::{NODATA, NUM_CLASSES};
use crate::output::TempOutput;
use crate::raster::{GeoRef, GeoTiffWriter, InputRaster, RasterError, Window};
use crate::vector::{CheckError, VectorError};

/// Why the queue could not be ranked, written or read; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Raster(#[from] RasterError),
    /// The queue's name is not a vector format written here.
    #[error(transparent)]
    Vector(#[from] VectorError),
    #[error("{}: has {bands} bands, not 3 class probabilities", path.display())]
    NotProbabilities { path: PathBuf, bands: usize },
    /// The uncertainty raster is not on the probabilities' grid.
    #[error("{}: another size than {}", path.display(), probs.display())]
    OtherSize { path: PathBuf, probs: PathBuf },
    /// GDAL failed at step `what` (its message kept).
    #[error("{}: {what} ({err})", path.display())]
    Gdal {
        path: PathBuf,
        what: String,
        err: gdal::errors::GdalError,
    },
    /// The finished queue failed its check or could not be put in place.
    #[error("{}: {err}", path.display())]
    Check { path: PathBuf, err: CheckError },
    #[error("{}: the raster's geotransform is degenerate", path.display())]
    Degenerate { path: PathBuf },
    #[error("{}: no window on the raster's grid", path.display())]
    NoWindow { path: PathBuf },
}

/// GDAL's failure at step `what` on the file `path`.
fn gdal_err(path: &Path, what: &str, err: gdal::errors::GdalError) -> ReviewError {
    ReviewError::Gdal {
        path: path.to_path_buf(),
        what: what.to_string(),
        err,
    }
}

/// One window of the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub window: Window,
    pub score: f64,
    pub mean_p_medium: f64,
    pub mean_entropy: f64,
    pub mean_mi: f64,
}

/// Sums of one grid cell.
#[derive(Clone, Copy, Default)]
struct Cell {
    valid: u64,
    score: f64,
    p_medium: f64,
    entropy: f64,
    mi: f64,
}

/// Normalised entropy of a probability triple (0..1).
fn entropy(p: [f32; NUM_CLASSES]) -> f64 {
    let h: f64 = p
        .iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| -(v as f64) * (v as f64).ln())
        .sum();
    h / (NUM_CLASSES as f64).ln()
}

/// The `count` best non-overlapping `size` windows of the probability raster `probs`
/// (3 bands, u8 x 255 with 255 nodata, or f32 with -1 nodata), with the mutual
/// information from band 2 of `uncertainty` when it has one.
pub fn rank_windows(
    probs: &Path,
    uncertainty: Option<&Path>,
    count: usize,
    size: usize,
) -> Result<Vec<Candidate>, ReviewError> {
    let p = InputRaster::open(probs)?;
    let (w, h) = (p.width(), p.height());
    if p.band_count() != NUM_CLASSES {
        return Err(ReviewError::NotProbabilities {
            path: probs.to_path_buf(),
            bands: p.band_count(),
        });
    }
    let scale = if p.band_type_name(1)? == "Byte" {
        1.0 / 255.0
    } else {
        1.0
    };
    let mi_raster = match uncertainty {
        Some(u) => {
            let r = InputRaster::open(u)?;
            if (r.width(), r.height()) != (w, h) {
                return Err(ReviewError::OtherSize {
                    path: u.to_path_buf(),
                    probs: probs.to_path_buf(),
                });
            }
            (r.band_count() > 1).then_some(r)
        }
        None => None,
    };
    let mi_scale = match &mi_raster {
        Some(r) if r.band_type_name(2)? == "Byte" => 1.0 / 255.0,
        _ => 1.0,
    };
    let size = size.clamp(4, w.max(h).max(4));
    let cell = (size / 4).max(1);
    let (cw, ch) = (w.div_ceil(cell), h.div_ceil(cell));
    let mut cells = vec![Cell::default(); cw * ch];
    let mut buf = Vec::new();
    let mut mi = Vec::new();
    for cy in 0..ch {
        let win = Window::new(0, cy * cell, w, cell.min(h - cy * cell));
        let n = win.pixels();
        buf.resize(NUM_CLASSES * n, 0f32);
        p.read_bands(&[1, 2, 3], win, &mut buf)?;
        if let Some(r) = &mi_raster {
            mi.resize(n, 0f32);
            r.read_band(2, win, &mut mi)?;
        }
        for i in 0..n {
            let raw = [buf[i], buf[n + i], buf[2 * n + i]];
            let nodata = if scale < 1.0 {
                raw[0] >= NODATA as f32
            } else {
                raw[0] < 0.0
            };
            if nodata {
                continue;
            }
            let probs = raw.map(|v| v * scale);
            let hh = entropy(probs);
            let m = if mi_raster.is_some() {
                (mi[i] * mi_scale).max(0.0) as f64
            } else {
                0.0
            };
            let c = &mut cells[cy * cw + (i % w) / cell];
            c.valid += 1;
            c.p_medium += probs[1] as f64;
            c.entropy += hh;
            c.mi += m;
            c.score += probs[1] as f64 * (hh + m);
        }
    }
    // Candidates: 4 x 4 cells (fewer at the raster's edges when it is smaller).
    let span = 4usize;
    let mut candidates = Vec::new();
    for y in 0..ch.saturating_sub(span - 1).max(1) {
        for x in 0..cw.saturating_sub(span - 1).max(1) {
            let mut s = Cell::default();
            for yy in y..(y + span).min(ch) {
                for xx in x..(x + span).min(cw) {
                    let c = cells[yy * cw + xx];
                    s.valid += c.valid;
                    s.score += c.score;
                    s.p_medium += c.p_medium;
                    s.entropy += c.entropy;
                    s.mi += c.mi;
                }
            }
            let window = Window::new(
                x * cell,
                y * cell,
                (span * cell).min(w - x * cell),
                (span * cell).min(h - y * cell),
            );
            if s.valid == 0 || 2 * s.valid < window.pixels() as u64 {
                continue;
            }
            let n = s.valid as f64;
            candidates.push(Candidate {
                window,
                score: s.score / n,
                mean_p_medium: s.p_medium / n,
                mean_entropy: s.entropy / n,
                mean_mi: s.mi / n,
            });
        }
    }
    // Best first; ties by position, so the queue does not depend on the sort.
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((a.window.y, a.window.x).cmp(&(b.window.y, b.window.x)))
    });
    let mut queue: Vec<Candidate> = Vec::with_capacity(count);
    for c in candidates {
        if queue.len() == count {
            break;
        }
        if queue.iter().all(|q| q.window.intersect(&c.window).is_none()) {
            queue.push(c);
        }
    }
    Ok(queue)
}

/// Writes the queue as rectangles (in `georef`'s CRS; pixel coordinates without one)
/// to `path` (.gpkg or .geojson), through a verified temporary.
pub fn write_queue(
    path: &Path,
    queue: &[Candidate],
    georef: &GeoRef,
    provenance: &[(String, String)],
) -> Result<(), ReviewError> {
    let driver_name = crate::vector::driver_for(path)?;
    crate::raster::quiet_gdal_errors();
    let named = |what: &str, e: gdal::errors::GdalError| gdal_err(path, what, e);
    let temp = TempOutput::new(path, "tmp").with_sidecar(crate::vector::JOURNAL);
    {
        let drv = DriverManager::get_driver_by_name(driver_name).map_err(|e| named("driver", e))?;
        let mut ds = drv
            .create_vector_only(temp.path())
            .map_err(|e| named("cannot create", e))?;
        crate::provenance::set_items(&mut ds, provenance);
        let srs = (!georef.projection.is_empty())
            .then(|| gdal::spatial_ref::SpatialRef::from_wkt(&georef.projection).ok())
            .flatten();
        let layer = ds
            .create_layer(LayerOptions {
                name: "review",
                srs: srs.as_ref(),
                ty: gdal_sys::OGRwkbGeometryType::wkbPolygon,
                options: None,
            })
            .map_err(|e| named("cannot create its layer", e))?;
        let fields = [
            ("rank", OGRFieldType::OFTInteger),
            ("score", OGRFieldType::OFTReal),
            ("mean_p_medium", OGRFieldType::OFTReal),
            ("mean_entropy", OGRFieldType::OFTReal),
            ("mean_mi", OGRFieldType::OFTReal),
            ("col", OGRFieldType::OFTInteger),
            ("row", OGRFieldType::OFTInteger),
            ("width", OGRFieldType::OFTInteger),
            ("height", OGRFieldType::OFTInteger),
        ];
        layer
            .create_defn_fields(&fields)
            .map_err(|e| named("cannot add its fields", e))?;
        let gt = georef.geo_transform.unwrap_or([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let at = |x: usize, y: usize| {
            let (x, y) = (x as f64, y as f64);
            (gt[0] + x * gt[1] + y * gt[2], gt[3] + x * gt[4] + y * gt[5])
        };
        for (rank, c) in queue.iter().enumerate() {
            let w = c.window;
            let corners = [
                at(w.x, w.y),
                at(w.right(), w.y),
                at(w.right(), w.bottom()),
                at(w.x, w.bottom()),
                at(w.x, w.y),
            ];
            let wkt = format!(
                "POLYGON(({}))",
                corners
                    .iter()
                    .map(|(x, y)| format!("{x} {y}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let geometry = Geometry::from_wkt(&wkt).map_err(|e| named("geometry", e))?;
            let mut f = Feature::new(layer.defn()).map_err(|e| named("feature", e))?;
            let fill = |f: &mut Feature<'_>| -> gdal::errors::Result<()> {
                f.set_geometry(geometry)?;
                f.set_field_integer(0, rank as i32 + 1)?;
                f.set_field_double(1, c.score)?;
                f.set_field_double(2, c.mean_p_medium)?;
                f.set_field_double(3, c.mean_entropy)?;
                f.set_field_double(4, c.mean_mi)?;
                for (k, v) in [w.x, w.y, w.width, w.height].into_iter().enumerate() {
                    f.set_field_integer(5 + k, v as i32)?;
                }
                Ok(())
            };
            fill(&mut f).map_err(|e| named("fields", e))?;
            f.create(&layer).map_err(|e| named("writing a window", e))?;
        }
        ds.close().map_err(|e| named("closing", e))?;
    }
    temp.commit(|p| crate::vector::verify(p, driver_name, queue.len()))
        .map_err(|err| ReviewError::Check {
            path: path.to_path_buf(),
            err,
        })
}

/// The queue's windows as pixel windows of a raster with `georef` and size
/// (`width`, `height`): each rectangle's corners through the inverse geotransform,
/// clipped to the raster.
pub fn read_windows(
    path: &Path,
    georef: &GeoRef,
    width: usize,
    height: usize,
) -> Result<Vec<Window>, ReviewError> {
    let named = |what: &str, e: gdal::errors::GdalError| gdal_err(path, what, e);
    let ds = Dataset::open(path).map_err(|e| named("not a vector file GDAL can open", e))?;
    let mut layer = ds.layer(0).map_err(|e| named("no layer", e))?;
    let gt = georef.geo_transform.unwrap_or([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    let det = gt[1] * gt[5] - gt[2] * gt[4];
    if det.abs() < f64::EPSILON {
        return Err(ReviewError::Degenerate {
            path: path.to_path_buf(),
        });
    }
    let to_pixel = |x: f64, y: f64| {
        let (dx, dy) = (x - gt[0], y - gt[3]);
        ((dx * gt[5] - dy * gt[2]) / det, (dy * gt[1] - dx * gt[4]) / det)
    };
    let mut out = Vec::new();
    for f in layer.features() {
        let Some(g) = f.geometry() else { continue };
        let e = g.envelope();
        let (a, b) = (to_pixel(e.MinX, e.MinY), to_pixel(e.MaxX, e.MaxY));
        let x0 = a.0.min(b.0).round().max(0.0) as usize;
        let x1 = (a.0.max(b.0).round() as usize).min(width);
        let y0 = a.1.min(b.1).round().max(0.0) as usize;
        let y1 = (a.1.max(b.1).round() as usize).min(height);
        if x1 > x0 && y1 > y0 {
            out.push(Window::new(x0, y0, x1 - x0, y1 - y0));
        }
    }
    if out.is_empty() {
        return Err(ReviewError::NoWindow {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// A copy of the class map `pred` at `out` with every pixel outside `windows` set to
/// nodata, so that scoring the copy scores the windows only.
pub fn keep_windows(pred: &Path, windows: &[Window], out: &Path) -> Result<(), ReviewError> {
    let r = InputRaster::open(pred)?;
    let (w, h) = (r.width(), r.height());
    let mut writer = GeoTiffWriter::create::<u8>(out, w, h, 1, &r.georef(), r.description()?)?;
    let rows = 256usize;
    let mut buf = Vec::new();
    let mut y0 = 0;
    while y0 < h {
        let win = Window::new(0, y0, w, rows.min(h - y0));
        buf.resize(win.pixels(), 0u8);
        r.read_band(1, win, &mut buf)?;
        for (i, v) in buf.iter_mut().enumerate() {
            let (x, y) = (i % w, y0 + i / w);
            if !windows
                .iter()
                .any(|k| x >= k.x && x < k.right() && y >= k.y && y < k.bottom())
            {
                *v = NODATA;
            }
        }
        writer.write_band(1, win, &buf)?;
        y0 += win.height;
    }
    Ok(writer.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_is_zero_for_certainty_and_one_for_a_uniform_guess() {
        assert_eq!(entropy([1.0, 0.0, 0.0]), 0.0);
        assert!((entropy([1.0 / 3.0; 3]) - 1.0).abs() < 1e-6);
        // 0.5/0.5/0: ln 2 / ln 3.
        assert!((entropy([0.5, 0.5, 0.0]) - 2f64.ln() / 3f64.ln()).abs() < 1e-6);
    }
}
