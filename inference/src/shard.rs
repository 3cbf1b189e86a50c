//! Sharded runs: one raster (or one list of rasters) split over N independent jobs, and
//! the mosaic that joins their parts.
//!
//! `--shard I/N` (0-based `I`, as `SLURM_ARRAY_TASK_ID` and Kubernetes'
//! `JOB_COMPLETION_INDEX` count) picks one of N disjoint parts of the work:
//!
//! - **many inputs**: the inputs whose index in the list is `I` modulo `N`
//!   ([`Shard::picks`]);
//! - **one raster**: a band of whole output blocks ([`Shard::rows`]): the block rows of
//!   [`BLOCK_ROWS`] pixels are dealt out in N contiguous runs, so each part is a GeoTIFF
//!   of full width covering rows `[r0, r1)`, georeferenced where those rows lie.
//!
//! A shard computes exactly the pixels the single run computes on its rows: the pipeline
//! keeps the whole raster's tile grid and runs only the tile rows that reach the shard's
//! rows (its halo), with the reflected border only at the raster's real edges; with the
//! CRF it first blends the rows of every CRF tile (halo included) whose core meets the
//! shard, so CRF tiles straddling two shards are computed identically by both. Parts
//! therefore join into the single run's result bit for bit.
//!
//! [`mosaic`] joins parts (any rasters on one pixel grid: same CRS, pixel size, bands and
//! pixel type, integer pixel offsets, no overlaps) into one GeoTIFF, streaming row
//! chunks so memory stays bounded; pixels no part covers get the nodata value.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use gdal::raster::GdalType;

use crate::raster::{GeoRef, GeoTiffWriter, InputRaster, RasterError, Window, WriteOptions};

/// Height of the row blocks dealt out to shards: a quarter of the GeoTIFF writer's 512 px
/// tiles, so that even a few hundred rows split over 4 jobs (the mosaic re-tiles anyway).
pub const BLOCK_ROWS: usize = 128;

/// Part `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// A `--shard` value that is not `I/N` with `0 <= I < N` (the text given).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--shard takes I/N with 0 <= I < N (0-based), e.g. 0/4; got {0:?}")]
pub struct ParseShardError(pub String);

impl FromStr for Shard {
    type Err = ParseShardError;

    fn from_str(s: &str) -> Result<Self, ParseShardError> {
        let bad = || ParseShardError(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the input at position `i` of a list belongs to this shard.
    pub fn picks(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// The output rows `[r0, r1)` of a raster `height` rows high that this shard writes:
    /// block rows of [`BLOCK_ROWS`] dealt out in contiguous runs, the first
    /// `blocks % count` shards taking one more. `None` when the raster has fewer block
    /// rows than shards and this one gets none.
    pub fn rows(&self, height: usize) -> Option<(usize, usize)> {
        let blocks = height.div_ceil(BLOCK_ROWS);
        let (base, extra) = (blocks / self.count, blocks % self.count);
        let first = self.index * base + self.index.min(extra);
        let n = base + usize::from(self.index < extra);
        (n > 0).then(|| (first * BLOCK_ROWS, ((first + n) * BLOCK_ROWS).min(height)))
    }
}

/// What [`mosaic`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MosaicReport {
    pub width: usize,
    pub height: usize,
    pub bands: usize,
    /// Output pixels no part covers (set to nodata).
    pub uncovered: usize,
}

/// One opened part and its pixel offset in the mosaic.
struct Part {
    raster: InputRaster,
    x: usize,
    y: usize,
}

/// Joins `parts` into one GeoTIFF at `output` (written to a temporary file and renamed),
/// with the first part's nodata, palette, band descriptions and metadata; optionally with
/// overviews (as [`crate::raster::overview_factors`]) or as a Cloud Optimized GeoTIFF.
pub fn mosaic(
    parts: &[PathBuf],
    output: &Path,
    overviews: bool,
    cog: bool,
) -> Result<MosaicReport, RasterError> {
    let invalid = |path: &Path, msg: String| RasterError::Invalid {
        path: path.to_path_buf(),
        msg,
    };
    let Some(first_path) = parts.first() else {
        return Err(invalid(output, "no parts to mosaic".into()));
    };
    let opened = parts
        .iter()
        .map(InputRaster::open)
        .collect::<Result<Vec<_>, _>>()?;
    let first = &opened[0];
    let reference = first.georef();
    let pixel_type = first.band_type_name(1)?;
    let bands = first.band_count();
    let mut description = first.description()?;
    crate::provenance::joined(&mut description.metadata, parts.len());
    let gt = reference.geo_transform.ok_or_else(|| {
        invalid(
            first_path,
            "has no geotransform; parts must be georeferenced".into(),
        )
    })?;
    let det = gt[1] * gt[5] - gt[2] * gt[4];
    if det.abs() < f64::EPSILON {
        return Err(invalid(first_path, "has a degenerate geotransform".into()));
    }
    // Pixel offset of each part's origin in the first part's grid (the inverse affine).
    let mut offsets = Vec::with_capacity(parts.len());
    for (path, raster) in parts.iter().zip(&opened) {
        let georef = raster.georef();
        let mismatch = |what: &str| invalid(path, format!("{what} differs from {}", first_path.display()));
        if raster.band_count() != bands {
            return Err(mismatch("band count"));
        }
        if raster.band_type_name(1)? != pixel_type {
            return Err(mismatch("pixel type"));
        }
        if !georef.same_crs(&reference) {
            return Err(mismatch("CRS"));
        }
        let pgt = georef
            .geo_transform
            .ok_or_else(|| invalid(path, "has no geotransform; parts must be georeferenced".into()))?;
        let tol = 1e-9 * gt[1].abs().max(gt[5].abs());
        if [1, 2, 4, 5].iter().any(|&k| (pgt[k] - gt[k]).abs() > tol) {
            return Err(mismatch("pixel size or rotation"));
        }
        let (dx, dy) = (pgt[0] - gt[0], pgt[3] - gt[3]);
        let px = (dx * gt[5] - dy * gt[2]) / det;
        let py = (dy * gt[1] - dx * gt[4]) / det;
        if (px - px.round()).abs() > 1e-3 || (py - py.round()).abs() > 1e-3 {
            return Err(invalid(
                path,
                format!(
                    "is not on {}'s pixel grid (offset {px:.4}, {py:.4} px)",
                    first_path.display()
                ),
            ));
        }
        offsets.push((px.round() as i64, py.round() as i64));
    }
    let min_x = offsets.iter().map(|o| o.0).min().unwrap_or(0);
    let min_y = offsets.iter().map(|o| o.1).min().unwrap_or(0);
    let mut placed: Vec<Part> = opened
        .into_iter()
        .zip(&offsets)
        .map(|(raster, &(x, y))| Part {
            raster,
            x: (x - min_x) as usize,
            y: (y - min_y) as usize,
        })
        .collect();
    let width = placed.iter().map(|p| p.x + p.raster.width()).max().unwrap_or(0);
    let height = placed.iter().map(|p| p.y + p.raster.height()).max().unwrap_or(0);
    let window_of = |p: &Part| Window::new(p.x, p.y, p.raster.width(), p.raster.height());
    for a in 0..placed.len() {
        for b in a + 1..placed.len() {
            if window_of(&placed[a]).intersect(&window_of(&placed[b])).is_some() {
                return Err(invalid(
                    &parts[b],
                    format!("overlaps {} (parts must be disjoint)", parts[a].display()),
                ));
            }
        }
    }
    placed.sort_by_key(|p| (p.y, p.x));
    let georef = reference.offset(min_x as f64, min_y as f64);
    let options = WriteOptions {
        overviews: if overviews || cog {
            crate::raster::overview_factors(width, height)
        } else {
            Vec::new()
        },
        cog,
        ..description
    };
    let size = Size { width, height, bands };
    let uncovered = match pixel_type.as_str() {
        "Byte" => copy_parts::<u8>(&placed, output, size, &georef, options)?,
        "UInt16" => copy_parts::<u16>(&placed, output, size, &georef, options)?,
        "Int16" => copy_parts::<i16>(&placed, output, size, &georef, options)?,
        "UInt32" => copy_parts::<u32>(&placed, output, size, &georef, options)?,
        "Int32" => copy_parts::<i32>(&placed, output, size, &georef, options)?,
        "Float32" => copy_parts::<f32>(&placed, output, size, &georef, options)?,
        "Float64" => copy_parts::<f64>(&placed, output, size, &georef, options)?,
        other => {
            return Err(invalid(
                first_path,
                format!("pixel type {other} is not supported"),
            ));
        }
    };
    Ok(MosaicReport {
        width,
        height,
        bands,
        uncovered,
    })
}

#[derive(Clone, Copy)]
struct Size {
    width: usize,
    height: usize,
    bands: usize,
}

/// Pixel values [`copy_parts`] can fill with nodata.
trait Fill: GdalType + Copy + Default {
    fn from_f64(v: f64) -> Self;
}

macro_rules! fill_as {
    ($($t:ty),*) => {$(
        impl Fill for $t {
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    )*};
}
fill_as!(u8, u16, i16, u32, i32, f32, f64);

/// Streams the mosaic in chunks of rows (at most about 64 MiB of pixels each): fill with
/// nodata, read every part's rows in the chunk into place, write. Returns the number of
/// pixels no part covered.
fn copy_parts<T: Fill>(
    parts: &[Part],
    output: &Path,
    size: Size,
    georef: &GeoRef,
    options: WriteOptions,
) -> Result<usize, RasterError> {
    let fill = T::from_f64(options.nodata.unwrap_or(0.0));
    let block = options.block_size.max(16);
    let row_bytes = size.width * size.bands * std::mem::size_of::<T>();
    let chunk_rows = ((64usize << 20) / row_bytes.max(1) / block).max(1) * block;
    let mut writer =
        GeoTiffWriter::create::<T>(output, size.width, size.height, size.bands, georef, options)?;
    let mut buf = Vec::new();
    let mut part_buf = Vec::new();
    let mut covered = 0usize;
    let band_list: Vec<usize> = (1..=size.bands).collect();
    let mut y0 = 0;
    while y0 < size.height {
        let rows = chunk_rows.min(size.height - y0);
        let chunk = Window::new(0, y0, size.width, rows);
        let plane = chunk.pixels();
        buf.clear();
        buf.resize(size.bands * plane, fill);
        for part in parts {
            let placed = Window::new(part.x, part.y, part.raster.width(), part.raster.height());
            let Some(w) = placed.intersect(&chunk) else {
                continue;
            };
            let local = Window::new(w.x - part.x, w.y - part.y, w.width, w.height);
            part_buf.resize(size.bands * w.pixels(), T::default());
            part.raster.read_bands(&band_list, local, &mut part_buf)?;
            for b in 0..size.bands {
                for r in 0..w.height {
                    let src = &part_buf[b * w.pixels() + r * w.width..][..w.width];
                    let dst = b * plane + (w.y - y0 + r) * size.width + w.x;
                    buf[dst..dst + w.width].copy_from_slice(src);
                }
            }
            covered += w.pixels();
        }
        writer.write_bands(chunk, &buf)?;
        y0 += rows;
    }
    writer.finish()?;
    Ok(size.width * size.height - covered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zero_based_index_of_count() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "a/4", "3", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rows_deal_whole_blocks_in_contiguous_runs() {
        // 650 rows = 6 blocks of 128 (the last 10 rows): 4 shards take 2, 2, 1, 1 blocks.
        let rows: Vec<_> = (0..4).map(|i| Shard { index: i, count: 4 }.rows(650)).collect();
        assert_eq!(
            rows,
            vec![
                Some((0, 256)),
                Some((256, 512)),
                Some((512, 640)),
                Some((640, 650))
            ]
        );
        // 100 rows = 1 block: shard 0 takes it, the others are empty.
        assert_eq!(Shard { index: 0, count: 2 }.rows(100), Some((0, 100)));
        assert_eq!(Shard { index: 1, count: 2 }.rows(100), None);
    }

    #[test]
    fn list_inputs_are_dealt_round_robin() {
        let s = Shard { index: 1, count: 3 };
        let picked: Vec<usize> = (0..8).filter(|&i| s.picks(i)).collect();
        assert_eq!(picked, vec![1, 4, 7]);
    }
}
