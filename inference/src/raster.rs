//! GDAL raster I/O by window: the only module of the workspace that reads or writes
//! rasters through `gdal`.
//!
//! - [`InputRaster`] opens anything GDAL reads and reads windows of chosen bands into
//!   caller-owned, reused buffers, converting any pixel type (u8, u16, i16, f32, ...) to
//!   the buffer's type. [`InputRaster::read_valid`] says which pixels hold data, from the
//!   bands' nodata values, a mask band or an alpha band (GDAL's mask-band rules): a pixel is
//!   nodata only when every selected band says so, as rasterio's dataset mask does.
//! - [`GeoTiffWriter`] writes a tiled, DEFLATE-compressed GeoTIFF with the input's
//!   georeferencing, window by window, into a temporary file beside the target
//!   ([`crate::output::TempOutput`]); only [`GeoTiffWriter::finish`] (overviews, optional
//!   Cloud Optimized GeoTIFF) renames it into place, after checking GDAL's error state
//!   after every write and on close and reading the finished file back whole. Dropping an
//!   unfinished writer deletes the temporary file, so a failure (a full disk included)
//!   never leaves a half-written raster under the final name, nor replaces an older one.
//! - [`AttributeTable`]: a GDAL raster attribute table (RAT) on band 1, e.g. the class
//!   map's value, class name and colour, so that QGIS and ArcGIS show names, not 0/1/2.
//!   GDAL 3.6's GeoTIFF driver keeps a RAT in the `.aux.xml` sidecar beside the file (not
//!   in the TIFF); the writer renames the temporary's sidecar with it, and removes an
//!   older sidecar of the final name that would describe another file.
//!
//! Every error names the file and, for reads and writes, the band and window, and keeps
//! GDAL's own message. GDAL's stderr printing is replaced by [`quiet_gdal_errors`] so that
//! a failure is reported once, by the caller.

use std::fmt;
use std::path::{Path, PathBuf};

use gdal::cpl::CslStringList;
use gdal::raster::{Buffer, ColorEntry, ColorTable, GdalType, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager, Metadata};

use crate::output::TempOutput;

/// Pixel types GDAL converts to and from (u8, u16, i16, u32, i32, f32, f64, ...).
pub use gdal::raster::GdalType as PixelType;

/// A rectangle of pixels: column `x`, row `y` of its top-left corner, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Window {
    pub fn new(x: usize, y: usize, width: usize, height: usize) -> Self {
        Self { x, y, width, height }
    }

    /// Number of pixels in the window.
    pub fn pixels(&self) -> usize {
        self.width * self.height
    }

    /// One past the last column.
    pub fn right(&self) -> usize {
        self.x + self.width
    }

    /// One past the last row.
    pub fn bottom(&self) -> usize {
        self.y + self.height
    }

    /// The part of `self` inside `other`, or `None` when they do not overlap.
    pub fn intersect(&self, other: &Window) -> Option<Window> {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        (right > x && bottom > y).then(|| Window::new(x, y, right - x, bottom - y))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{} at ({}, {})", self.width, self.height, self.x, self.y)
    }
}

/// Errors of raster I/O; every message names the file.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RasterError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: not a raster GDAL can open ({msg})")]
    Open { path: PathBuf, msg: String },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error(
        "{path}: reading band {band}, window {window} failed ({msg}); the file may be truncated or corrupt"
    )]
    Read {
        path: PathBuf,
        band: usize,
        window: Window,
        msg: String,
    },
    #[error("{path}: cannot create output ({msg})")]
    Create { path: PathBuf, msg: String },
    #[error("{path}: writing band {band}, window {window} failed ({msg})")]
    Write {
        path: PathBuf,
        band: usize,
        window: Window,
        msg: String,
    },
    #[error("{path}: finishing output failed ({msg})")]
    Finish { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, RasterError>;

/// Why a writer's step after the pixels failed: setting an attribute table, or the
/// read-back of the finished file. Its text is the reason inside the
/// [`RasterError::Create`] / [`RasterError::Finish`] that names the file.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("attribute table: {0:?} has a NUL byte")]
    TableNul(String),
    #[error("attribute table: cannot add column {0}")]
    TableColumn(String),
    /// GDAL refused the table (its reason, if it gave one).
    #[error("attribute table: {}", .0.as_deref().unwrap_or("GDAL refused it"))]
    TableRefused(Option<String>),
    #[error("flushing it to the disk failed ({})", crate::output::io_msg(.0))]
    Sync(std::io::Error),
    /// GDAL cannot reopen the finished file (its reason).
    #[error("reading it back failed ({0})")]
    Reopen(String),
    /// Bands, width and height read back differ from those written.
    #[error(
        "read back as {}x{}x{}, written as {}x{}x{}",
        got.0, got.1, got.2, written.0, written.1, written.2
    )]
    Shape {
        got: (usize, usize, usize),
        written: (usize, usize, usize),
    },
    #[error("reading it back failed at band {band}, {window} ({msg})")]
    ReadBack {
        band: usize,
        window: Window,
        msg: String,
    },
    #[error(transparent)]
    Raster(RasterError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

/// Routes GDAL's own error printing to `tracing` (debug level): errors still reach the
/// caller through `Result`, once, with GDAL's message inside. Each failure is also kept
/// for the thread it happened on, with the OS error behind it when that is a write error
/// (GDAL 3.6 cannot report a failed close, and a failed block write during a cache
/// flush does not fail the call that triggered it: [`GeoTiffWriter`] asks after each
/// step). Installed once; [`InputRaster::open`] and [`GeoTiffWriter::create`] install it.
pub fn quiet_gdal_errors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gdal::config::set_error_handler(|class, code, msg| {
            // First, before anything else can change errno.
            let os = std::io::Error::last_os_error();
            if matches!(
                class,
                gdal::errors::CplErrType::Failure | gdal::errors::CplErrType::Fatal
            ) {
                let write_error = matches!(
                    os.raw_os_error(),
                    Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG | libc::EIO | libc::EROFS)
                );
                let text = if write_error {
                    format!("{} ({msg})", crate::output::io_msg(&os))
                } else if msg.trim().is_empty() {
                    format!("GDAL error {code}")
                } else {
                    msg.trim().to_string()
                };
                GDAL_FAILURE.with(|f| *f.borrow_mut() = Some(text));
            }
            tracing::debug!(target: "gdal", "GDAL {class:?} {code}: {msg}");
        });
    });
}

thread_local! {
    /// The last GDAL failure on this thread (see [`quiet_gdal_errors`]).
    static GDAL_FAILURE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Takes (and clears) this thread's last GDAL failure.
fn take_gdal_failure() -> Option<String> {
    GDAL_FAILURE.with(|f| f.borrow_mut().take())
}

/// A GDAL error as one readable message: GDAL's text, or, where the binding has none
/// (a NULL return without a message), the failure GDAL reported on this thread.
fn gdal_msg(e: gdal::errors::GdalError) -> String {
    let recorded = take_gdal_failure();
    match e {
        gdal::errors::GdalError::NullPointer { method_name, msg } if msg.trim().is_empty() => {
            recorded.unwrap_or_else(|| format!("GDAL's {method_name} failed"))
        }
        gdal::errors::GdalError::NullPointer { msg, .. } => msg,
        gdal::errors::GdalError::CplError { msg, number, .. } => {
            if msg.trim().is_empty() {
                recorded.unwrap_or_else(|| format!("GDAL error {number}"))
            } else {
                msg
            }
        }
        other => other.to_string(),
    }
}

/// Caps GDAL's block cache (by default 5% of the machine's memory) at `bytes`, so that
/// a pipeline's memory budget holds whatever the raster size. Call before the first read.
pub fn set_cache_limit(bytes: usize) {
    let mib = (bytes >> 20).max(16);
    // Only fails for a key or value with a NUL byte, which these are not.
    let _ = gdal::config::set_config_option("GDAL_CACHEMAX", &mib.to_string());
}

/// Where a raster sits on Earth: GDAL's affine geotransform and the CRS as WKT.
#[derive(Clone, Debug, PartialEq)]
pub struct GeoRef {
    /// `[origin_x, pixel_width, row_rotation, origin_y, column_rotation, pixel_height]`;
    /// `None` for rasters without one (pixel coordinates only).
    pub geo_transform: Option<[f64; 6]>,
    /// Coordinate reference system as WKT; empty when the raster has none.
    pub projection: String,
}

impl GeoRef {
    /// A north-up georeference: top-left corner `(origin_x, origin_y)` in CRS units,
    /// square pixels of `pixel_size`, CRS given by its EPSG code.
    pub fn north_up(epsg: u32, origin_x: f64, origin_y: f64, pixel_size: f64) -> Result<Self> {
        let srs = gdal::spatial_ref::SpatialRef::from_epsg(epsg).map_err(|e| RasterError::Invalid {
            path: PathBuf::from(format!("EPSG:{epsg}")),
            msg: e.to_string(),
        })?;
        let projection = srs.to_wkt().map_err(|e| RasterError::Invalid {
            path: PathBuf::from(format!("EPSG:{epsg}")),
            msg: e.to_string(),
        })?;
        Ok(Self {
            geo_transform: Some([origin_x, pixel_size, 0.0, origin_y, 0.0, -pixel_size]),
            projection,
        })
    }
}

impl GeoRef {
    /// Whether both have the same CRS by GDAL's `OSRIsSame` (so WKT1 and WKT2 spellings of
    /// one CRS match); two rasters without a CRS match, one without and one with do not.
    pub fn same_crs(&self, other: &GeoRef) -> bool {
        match (self.projection.is_empty(), other.projection.is_empty()) {
            (true, true) => true,
            (false, false) => {
                self.projection == other.projection
                    || matches!(
                        (SpatialRef::from_wkt(&self.projection), SpatialRef::from_wkt(&other.projection)),
                        (Ok(a), Ok(b)) if a == b
                    )
            }
            _ => false,
        }
    }

    /// The georeference of the raster whose top-left pixel is pixel `(x, y)` of this one
    /// (same CRS and pixel size, origin moved along the affine transform; negative
    /// offsets reach above or left of it).
    pub fn offset(&self, x: f64, y: f64) -> GeoRef {
        let geo_transform = self.geo_transform.map(|gt| {
            [
                gt[0] + x * gt[1] + y * gt[2],
                gt[1],
                gt[2],
                gt[3] + x * gt[4] + y * gt[5],
                gt[4],
                gt[5],
            ]
        });
        GeoRef {
            geo_transform,
            projection: self.projection.clone(),
        }
    }

    /// A short name of the CRS for messages: `EPSG:32633 (WGS 84 / UTM zone 33N)`, or the
    /// CRS's name, or the start of its WKT.
    pub fn crs_name(&self) -> String {
        let Ok(srs) = SpatialRef::from_wkt(&self.projection) else {
            return self.projection.chars().take(60).collect();
        };
        let name = srs.name().unwrap_or_default();
        match (srs.auth_name(), srs.auth_code()) {
            (Some(auth), Ok(code)) => format!("{auth}:{code} ({name})"),
            _ => name,
        }
    }
}

/// An open input raster with its size, bands and georeferencing.
pub struct InputRaster {
    path: PathBuf,
    dataset: Dataset,
    width: usize,
    height: usize,
    band_count: usize,
}

impl InputRaster {
    /// Opens `path` read-only. Fails with a clear message for a missing file, a file GDAL
    /// cannot read as a raster, or a raster without bands.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() && !path.to_string_lossy().starts_with("/vsi") {
            return Err(RasterError::NotFound { path });
        }
        quiet_gdal_errors();
        if path.is_dir() {
            return Err(RasterError::Invalid {
                path,
                msg: "is a folder, not a raster".into(),
            });
        }
        let dataset = Dataset::open(&path).map_err(|e| RasterError::Open {
            path: path.clone(),
            msg: gdal_msg(e),
        })?;
        let (width, height) = dataset.raster_size();
        let band_count = dataset.raster_count();
        if band_count == 0 || width == 0 || height == 0 {
            return Err(RasterError::Invalid {
                path,
                msg: "has no raster bands".into(),
            });
        }
        Ok(Self {
            path,
            dataset,
            width,
            height,
            band_count,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of bands (1-based band numbers run `1..=band_count`).
    pub fn band_count(&self) -> usize {
        self.band_count
    }

    /// The whole raster as a window.
    pub fn extent(&self) -> Window {
        Window::new(0, 0, self.width, self.height)
    }

    /// GDAL's name of band `band`'s pixel type (`Byte`, `UInt16`, `Float32`, ...).
    pub fn band_type_name(&self, band: usize) -> Result<String> {
        Ok(self.band(band)?.band_type().name())
    }

    /// The nodata value of band `band`, if it has one.
    pub fn nodata(&self, band: usize) -> Result<Option<f64>> {
        Ok(self.band(band)?.no_data_value())
    }

    /// GDAL's natural block size `(columns, rows)` of band `band`: reads aligned to it
    /// decode each block once.
    pub fn block_size(&self, band: usize) -> Result<(usize, usize)> {
        Ok(self.band(band)?.block_size())
    }

    /// Drops this dataset's blocks from GDAL's block cache, for streaming reads that will
    /// not come back to them (memory then stays at one window, not GDAL_CACHEMAX).
    pub fn drop_cached_blocks(&mut self) {
        // Read-only: flushing writes nothing, it only frees the cached blocks.
        let _ = self.dataset.flush_cache();
    }

    pub fn georef(&self) -> GeoRef {
        GeoRef {
            geo_transform: self.dataset.geo_transform().ok(),
            projection: self.dataset.projection(),
        }
    }

    /// How this raster's bands are described, as options to write a raster like it:
    /// band 1's nodata and palette, every band's description, the default-domain
    /// metadata. Layout fields (block size, overviews, COG) keep their defaults.
    pub fn description(&self) -> Result<WriteOptions> {
        let first = self.band(1)?;
        let color_table = first
            .color_table()
            .map(|table| {
                (0..table.entry_count().min(256))
                    .filter_map(|i| {
                        let e = table.entry_as_rgb(i)?;
                        let c = |v: i16| v.clamp(0, 255) as u8;
                        Some((i as u8, [c(e.r), c(e.g), c(e.b), c(e.a)]))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut band_descriptions = Vec::with_capacity(self.band_count);
        for b in 1..=self.band_count {
            band_descriptions.push(self.band(b)?.description().unwrap_or_default());
        }
        let metadata = self
            .dataset
            .metadata()
            .filter(|e| e.domain.is_empty())
            .map(|e| (e.key, e.value))
            .collect();
        Ok(WriteOptions {
            nodata: first.no_data_value(),
            color_table,
            band_descriptions,
            metadata,
            attribute_table: read_attribute_table(&first),
            ..WriteOptions::default()
        })
    }

    /// The default-domain metadata items, in GDAL's order.
    pub fn metadata(&self) -> Vec<(String, String)> {
        self.dataset
            .metadata()
            .filter(|e| e.domain.is_empty())
            .map(|e| (e.key, e.value))
            .collect()
    }

    /// Band `band`'s raster attribute table, if it has one (from the file or its
    /// `.aux.xml` sidecar).
    pub fn attribute_table(&self, band: usize) -> Result<Option<AttributeTable>> {
        Ok(read_attribute_table(&self.band(band)?))
    }

    fn band(&self, band: usize) -> Result<gdal::raster::RasterBand<'_>> {
        if band == 0 || band > self.band_count {
            return Err(RasterError::Invalid {
                path: self.path.clone(),
                msg: format!("has {} band(s), band {band} was asked for", self.band_count),
            });
        }
        self.dataset.rasterband(band).map_err(|e| RasterError::Invalid {
            path: self.path.clone(),
            msg: format!("band {band}: {e}"),
        })
    }

    fn check_window(&self, window: Window) -> Result<()> {
        if window.width == 0
            || window.height == 0
            || window.right() > self.width
            || window.bottom() > self.height
        {
            return Err(RasterError::Invalid {
                path: self.path.clone(),
                msg: format!(
                    "window {window} is outside the {}x{} raster",
                    self.width, self.height
                ),
            });
        }
        Ok(())
    }

    /// Reads `window` of one band (1-based) into `out` (row-major, `window.pixels()` long),
    /// converting GDAL's pixel type to `T`.
    pub fn read_band<T: GdalType + Copy>(&self, band: usize, window: Window, out: &mut [T]) -> Result<()> {
        self.read_band_resampled(band, window, (window.width, window.height), out)
    }

    /// Reads `window` of one band resampled (nearest neighbour, GDAL's overviews when
    /// present) to `size` = (width, height) pixels: a cheap decimated look at a large
    /// raster, e.g. for statistics.
    pub fn read_band_resampled<T: GdalType + Copy>(
        &self,
        band: usize,
        window: Window,
        size: (usize, usize),
        out: &mut [T],
    ) -> Result<()> {
        self.check_window(window)?;
        let rb = self.band(band)?;
        rb.read_into_slice(
            (window.x as isize, window.y as isize),
            (window.width, window.height),
            size,
            out,
            None,
        )
        .map_err(|e| RasterError::Read {
            path: self.path.clone(),
            band,
            window,
            msg: gdal_msg(e),
        })
    }

    /// Reads `window` of several bands (1-based numbers, in the given order) into `out`,
    /// band-major: `out[b * pixels + row * width + col]`, `(bands.len(), H, W)`.
    pub fn read_bands<T: GdalType + Copy>(
        &self,
        bands: &[usize],
        window: Window,
        out: &mut [T],
    ) -> Result<()> {
        let pixels = window.pixels();
        assert_eq!(out.len(), bands.len() * pixels, "output buffer size");
        for (i, &band) in bands.iter().enumerate() {
            self.read_band(band, window, &mut out[i * pixels..(i + 1) * pixels])?;
        }
        Ok(())
    }

    /// Fills `valid` (`window.pixels()` long) with `true` where at least one of `bands`
    /// holds data according to GDAL's mask band (nodata value, per-dataset mask or alpha
    /// band), `false` where all of them are nodata. `scratch` is reused between calls.
    pub fn read_valid(
        &self,
        bands: &[usize],
        window: Window,
        valid: &mut [bool],
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        self.check_window(window)?;
        let pixels = window.pixels();
        assert_eq!(valid.len(), pixels, "mask buffer size");
        valid.fill(false);
        scratch.resize(pixels, 0);
        for &band in bands {
            let rb = self.band(band)?;
            let flags = rb.mask_flags().map_err(|e| RasterError::Invalid {
                path: self.path.clone(),
                msg: format!("band {band} mask flags: {e}"),
            })?;
            if flags.is_all_valid() {
                valid.fill(true);
                return Ok(());
            }
            let mask = rb.open_mask_band().map_err(|e| RasterError::Read {
                path: self.path.clone(),
                band,
                window,
                msg: format!("mask band: {e}"),
            })?;
            mask.read_into_slice(
                (window.x as isize, window.y as isize),
                (window.width, window.height),
                (window.width, window.height),
                scratch.as_mut_slice(),
                None,
            )
            .map_err(|e| RasterError::Read {
                path: self.path.clone(),
                band,
                window,
                msg: format!("mask band: {e}"),
            })?;
            for (v, &m) in valid.iter_mut().zip(scratch.iter()) {
                *v |= m != 0;
            }
        }
        Ok(())
    }
}

/// The type of a raster attribute table column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Integer,
    Real,
    Text,
}

/// A raster attribute table column: name, type and GDAL's usage code (what the column
/// means to a reader: `GFU_MinMax` the pixel value, `GFU_Name` the class name,
/// `GFU_Red` ... `GFU_Alpha` the colour; see [`usage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
    pub usage: u32,
}

/// GDAL's raster attribute table column usages ([`Column::usage`]).
pub mod usage {
    use gdal_sys::GDALRATFieldUsage as U;
    pub const GENERIC: u32 = U::GFU_Generic;
    pub const PIXEL_COUNT: u32 = U::GFU_PixelCount;
    pub const NAME: u32 = U::GFU_Name;
    /// The pixel value a row describes.
    pub const VALUE: u32 = U::GFU_MinMax;
    pub const RED: u32 = U::GFU_Red;
    pub const GREEN: u32 = U::GFU_Green;
    pub const BLUE: u32 = U::GFU_Blue;
    pub const ALPHA: u32 = U::GFU_Alpha;
}

/// A thematic raster attribute table: columns and rows of values (numbers as text,
/// parsed to the column's type when written).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttributeTable {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

/// Sets `table` as `band`'s default raster attribute table (GDAL copies it).
fn write_attribute_table(
    band: &gdal::raster::RasterBand<'_>,
    table: &AttributeTable,
) -> std::result::Result<(), StepError> {
    use gdal_sys::{CPLErr, GDALRATFieldType, GDALRATTableType};
    let cstr = |s: &str| std::ffi::CString::new(s).map_err(|_| StepError::TableNul(s.to_string()));
    // SAFETY: `rat` is created here, filled through GDAL's C API with valid indices and
    // NUL-terminated strings, copied by GDALSetDefaultRAT and destroyed here once.
    unsafe {
        let rat = gdal_sys::GDALCreateRasterAttributeTable();
        let fill = || -> std::result::Result<(), StepError> {
            for c in &table.columns {
                let kind = match c.kind {
                    ColumnType::Integer => GDALRATFieldType::GFT_Integer,
                    ColumnType::Real => GDALRATFieldType::GFT_Real,
                    ColumnType::Text => GDALRATFieldType::GFT_String,
                };
                let name = cstr(&c.name)?;
                if gdal_sys::GDALRATCreateColumn(rat, name.as_ptr(), kind, c.usage) != CPLErr::CE_None {
                    return Err(StepError::TableColumn(c.name.clone()));
                }
            }
            gdal_sys::GDALRATSetTableType(rat, GDALRATTableType::GRTT_THEMATIC);
            gdal_sys::GDALRATSetRowCount(rat, table.rows.len() as i32);
            for (r, row) in table.rows.iter().enumerate() {
                for (k, (c, v)) in table.columns.iter().zip(row).enumerate() {
                    let (r, k) = (r as i32, k as i32);
                    match c.kind {
                        ColumnType::Integer => {
                            gdal_sys::GDALRATSetValueAsInt(rat, r, k, v.trim().parse().unwrap_or(0))
                        }
                        ColumnType::Real => {
                            gdal_sys::GDALRATSetValueAsDouble(rat, r, k, v.trim().parse().unwrap_or(f64::NAN))
                        }
                        ColumnType::Text => gdal_sys::GDALRATSetValueAsString(rat, r, k, cstr(v)?.as_ptr()),
                    }
                }
            }
            if gdal_sys::GDALSetDefaultRAT(band.c_rasterband(), rat) != CPLErr::CE_None {
                return Err(StepError::TableRefused(take_gdal_failure()));
            }
            Ok(())
        };
        let result = fill();
        gdal_sys::GDALDestroyRasterAttributeTable(rat);
        result
    }
}

/// `band`'s default raster attribute table, if any.
fn read_attribute_table(band: &gdal::raster::RasterBand<'_>) -> Option<AttributeTable> {
    use gdal_sys::GDALRATFieldType;
    let text = |p: *const std::ffi::c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: GDAL returns a NUL-terminated string it owns, valid until the next call.
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        }
    };
    // SAFETY: the table belongs to the band, which outlives this function; indices are
    // within GDAL's own counts.
    unsafe {
        let rat = gdal_sys::GDALGetDefaultRAT(band.c_rasterband());
        if rat.is_null() {
            return None;
        }
        let ncols = gdal_sys::GDALRATGetColumnCount(rat);
        let columns = (0..ncols)
            .map(|k| Column {
                name: text(gdal_sys::GDALRATGetNameOfCol(rat, k)),
                kind: match gdal_sys::GDALRATGetTypeOfCol(rat, k) {
                    GDALRATFieldType::GFT_Integer => ColumnType::Integer,
                    GDALRATFieldType::GFT_Real => ColumnType::Real,
                    _ => ColumnType::Text,
                },
                usage: gdal_sys::GDALRATGetUsageOfCol(rat, k),
            })
            .collect();
        let rows = (0..gdal_sys::GDALRATGetRowCount(rat))
            .map(|r| {
                (0..ncols)
                    .map(|k| text(gdal_sys::GDALRATGetValueAsString(rat, r, k)))
                    .collect()
            })
            .collect();
        Some(AttributeTable { columns, rows })
    }
}

/// How a GeoTIFF is laid out and described.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Nodata value of every band (default none).
    pub nodata: Option<f64>,
    /// Palette for single-band u8 class maps: `(value, [r, g, b, a])` entries.
    pub color_table: Vec<(u8, [u8; 4])>,
    /// Band descriptions, one per band (may be empty).
    pub band_descriptions: Vec<String>,
    /// Internal tile size in pixels (default 512; GDAL needs a multiple of 16).
    pub block_size: usize,
    /// Overview factors built at finish, e.g. `[2, 4, 8]` (default none).
    pub overviews: Vec<i32>,
    /// Write a Cloud Optimized GeoTIFF (COG driver) instead of a plain tiled GeoTIFF.
    pub cog: bool,
    /// Dataset metadata items (key, value) in the default domain.
    pub metadata: Vec<(String, String)>,
    /// Raster attribute table of band 1 (GDAL writes it to the `.aux.xml` sidecar).
    pub attribute_table: Option<AttributeTable>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            nodata: None,
            color_table: Vec::new(),
            band_descriptions: Vec::new(),
            block_size: 512,
            overviews: Vec::new(),
            cog: false,
            metadata: Vec::new(),
            attribute_table: None,
        }
    }
}

/// Overview factors 2, 4, 8, ... while the overview's long side stays >= 256 px (the
/// [`WriteOptions::overviews`] of every raster `risk-infer` writes with overviews).
pub fn overview_factors(width: usize, height: usize) -> Vec<i32> {
    let long = width.max(height);
    (1..)
        .map(|k| 1i32 << k)
        .take_while(|&f| long / f as usize >= 256)
        .collect()
}

/// A GeoTIFF being written to a temporary file beside its final path.
pub struct GeoTiffWriter {
    final_path: PathBuf,
    /// Declared before `temp`: an unfinished writer closes GDAL's handle before the
    /// temporary file is removed.
    dataset: Option<Dataset>,
    temp: Option<TempOutput>,
    width: usize,
    height: usize,
    bands: usize,
    options: WriteOptions,
}

pub use crate::output::temp_path_for;

impl GeoTiffWriter {
    /// Creates a `width` x `height` GeoTIFF of `bands` bands of pixel type `T` that will
    /// become `path` on [`finish`](Self::finish).
    pub fn create<T: GdalType>(
        path: impl AsRef<Path>,
        width: usize,
        height: usize,
        bands: usize,
        georef: &GeoRef,
        options: WriteOptions,
    ) -> Result<Self> {
        let final_path = path.as_ref().to_path_buf();
        let create_err = |msg: String| RasterError::Create {
            path: final_path.clone(),
            msg,
        };
        if let Some(parent) = final_path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(create_err(format!("folder {} does not exist", parent.display())));
        }
        if final_path.is_dir() {
            return Err(create_err("is a folder".into()));
        }
        quiet_gdal_errors();
        let temp = TempOutput::new(&final_path, "tmp").with_sidecar(crate::output::SIDECAR);
        let driver = DriverManager::get_driver_by_name("GTiff").map_err(|e| create_err(gdal_msg(e)))?;
        let block = options.block_size.max(16) / 16 * 16;
        let mut creation: Vec<String> = vec![
            "TILED=YES".into(),
            format!("BLOCKXSIZE={block}"),
            format!("BLOCKYSIZE={block}"),
            "COMPRESS=DEFLATE".into(),
            "BIGTIFF=IF_SAFER".into(),
        ];
        if bands > 1 {
            creation.push("INTERLEAVE=BAND".into());
        }
        let creation = RasterCreationOptions::from_iter(creation);
        let mut dataset = driver
            .create_with_band_type_with_options::<T, _>(temp.path(), width, height, bands, &creation)
            .map_err(|e| create_err(with_os_reason(gdal_msg(e), &final_path)))?;
        let mut writer = Self {
            final_path: final_path.clone(),
            dataset: None,
            temp: Some(temp),
            width,
            height,
            bands,
            options,
        };
        if let Some(gt) = georef.geo_transform {
            dataset
                .set_geo_transform(&gt)
                .map_err(|e| create_err(gdal_msg(e)))?;
        }
        if !georef.projection.is_empty() {
            dataset
                .set_projection(&georef.projection)
                .map_err(|e| create_err(gdal_msg(e)))?;
        }
        for (key, value) in &writer.options.metadata {
            dataset
                .set_metadata_item(key, value, "")
                .map_err(|e| create_err(gdal_msg(e)))?;
        }
        for b in 1..=bands {
            let mut band = dataset.rasterband(b).map_err(|e| create_err(gdal_msg(e)))?;
            if let Some(nd) = writer.options.nodata {
                band.set_no_data_value(Some(nd))
                    .map_err(|e| create_err(gdal_msg(e)))?;
            }
            if let Some(desc) = writer.options.band_descriptions.get(b - 1) {
                band.set_description(desc).map_err(|e| create_err(gdal_msg(e)))?;
            }
            if !writer.options.color_table.is_empty() {
                let mut table = ColorTable::default();
                for &(value, [r, g, bl, a]) in &writer.options.color_table {
                    table.set_color_entry(
                        value as u16,
                        &ColorEntry::rgba(r as i16, g as i16, bl as i16, a as i16),
                    );
                }
                band.set_color_table(&table);
            }
        }
        if let Some(table) = &writer.options.attribute_table {
            let band = dataset.rasterband(1).map_err(|e| create_err(gdal_msg(e)))?;
            write_attribute_table(&band, table).map_err(|e| create_err(e.to_string()))?;
        }
        writer.dataset = Some(dataset);
        Ok(writer)
    }

    /// The path the file will have once finished.
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Number of bands.
    pub fn band_count(&self) -> usize {
        self.bands
    }

    /// Writes `data` (row-major, `window.pixels()` long) into `window` of band `band`
    /// (1-based).
    pub fn write_band<T: GdalType + Copy>(&mut self, band: usize, window: Window, data: &[T]) -> Result<()> {
        let err = |msg: String| RasterError::Write {
            path: self.final_path.clone(),
            band,
            window,
            msg,
        };
        if band == 0 || band > self.bands || window.right() > self.width || window.bottom() > self.height {
            return Err(err(format!(
                "outside the {}x{}x{} output",
                self.width, self.height, self.bands
            )));
        }
        if data.len() != window.pixels() {
            return Err(err(format!(
                "{} values for {} pixels",
                data.len(),
                window.pixels()
            )));
        }
        let dataset = self.dataset.as_ref().expect("dataset is open until finish");
        let mut rb = dataset.rasterband(band).map_err(|e| err(gdal_msg(e)))?;
        let mut buffer = Buffer::new((window.width, window.height), data.to_vec());
        take_gdal_failure();
        rb.write(
            (window.x as isize, window.y as isize),
            (window.width, window.height),
            &mut buffer,
        )
        .map_err(|e| err(with_os_reason(gdal_msg(e), &self.final_path)))?;
        // A block written out of GDAL's cache to make room fails here, not in the call.
        match take_gdal_failure() {
            Some(msg) => Err(err(with_os_reason(msg, &self.final_path))),
            None => Ok(()),
        }
    }

    /// Writes band-major `data` (`(bands, H, W)`) into `window` of every band.
    pub fn write_bands<T: GdalType + Copy>(&mut self, window: Window, data: &[T]) -> Result<()> {
        let pixels = window.pixels();
        for b in 0..self.bands {
            self.write_band(b + 1, window, &data[b * pixels..(b + 1) * pixels])?;
        }
        Ok(())
    }

    /// Builds overviews, closes the file (converting it to a COG if asked), reopens and
    /// reads it whole, and only then renames it to its final path. GDAL's error state is
    /// checked after every step (a failed close is not reported otherwise); on any
    /// failure the temporary file is removed and the final path keeps what it had.
    pub fn finish(mut self) -> Result<()> {
        let final_path = self.final_path.clone();
        let err = |msg: String| RasterError::Finish {
            path: final_path.clone(),
            msg: with_os_reason(msg, &final_path),
        };
        let check = |step: &str| match take_gdal_failure() {
            Some(msg) => Err(err(format!("{step}: {msg}"))),
            None => Ok(()),
        };
        let mut dataset = self.dataset.take().expect("dataset is open until finish");
        take_gdal_failure();
        let resampling = if self.options.color_table.is_empty() {
            "AVERAGE"
        } else {
            "NEAREST"
        };
        if !self.options.overviews.is_empty() && !self.options.cog {
            dataset
                .build_overviews(resampling, &self.options.overviews, &[])
                .map_err(|e| err(format!("overviews: {}", gdal_msg(e))))?;
            check("overviews")?;
        }
        dataset.flush_cache().map_err(|e| err(gdal_msg(e)))?;
        check("writing")?;
        let temp = self.temp.take().expect("temporary file until finish");
        let temp = if self.options.cog {
            let cog = TempOutput::new(&self.final_path, "cog").with_sidecar(crate::output::SIDECAR);
            let driver = DriverManager::get_driver_by_name("COG").map_err(|e| err(gdal_msg(e)))?;
            let mut opts = CslStringList::new();
            for (k, v) in [
                ("COMPRESS", "DEFLATE"),
                ("BLOCKSIZE", &self.options.block_size.to_string()),
                ("RESAMPLING", resampling),
                ("BIGTIFF", "IF_SAFER"),
                (
                    "OVERVIEWS",
                    if self.options.overviews.is_empty() {
                        "NONE"
                    } else {
                        "AUTO"
                    },
                ),
            ] {
                opts.set_name_value(k, v).map_err(|e| err(gdal_msg(e)))?;
            }
            let copy = dataset
                .create_copy(&driver, cog.path(), &opts)
                .map_err(|e| err(format!("COG: {}", gdal_msg(e))))?;
            check("COG")?;
            if let Some(table) = &self.options.attribute_table {
                let band = copy.rasterband(1).map_err(|e| err(gdal_msg(e)))?;
                write_attribute_table(&band, table).map_err(|e| err(format!("COG: {e}")))?;
            }
            copy.close().map_err(|e| err(format!("COG: {}", gdal_msg(e))))?;
            check("COG")?;
            dataset.close().map_err(|e| err(gdal_msg(e)))?;
            drop(temp); // the plain GeoTIFF, copied
            cog
        } else {
            dataset.close().map_err(|e| err(gdal_msg(e)))?;
            check("closing")?;
            temp
        };
        let (w, h, bands) = (self.width, self.height, self.bands);
        temp.commit(|path| verify_raster(path, w, h, bands))
            .map_err(|e| err(e.to_string()))
    }
}

/// Flushes a finished raster to the disk, reopens it and reads every band whole (in
/// strips), so that a file that GDAL cannot read back (a truncated directory, a missing block) is caught before
/// it replaces anything.
fn verify_raster(
    path: &Path,
    width: usize,
    height: usize,
    bands: usize,
) -> std::result::Result<(), StepError> {
    // GDAL has closed the file; its delayed write errors (NFS, quotas) surface on fsync.
    std::fs::File::open(path)
        .and_then(|f| crate::output::sync(&f))
        .map_err(StepError::Sync)?;
    take_gdal_failure();
    let back = InputRaster::open(path).map_err(|e| match e {
        RasterError::Open { msg, .. } | RasterError::Invalid { msg, .. } => StepError::Reopen(msg),
        other => StepError::Raster(other),
    })?;
    // Only failures of the reads below count (opening may note harmless ones).
    take_gdal_failure();
    if (back.width(), back.height(), back.band_count()) != (width, height, bands) {
        return Err(StepError::Shape {
            got: (back.width(), back.height(), back.band_count()),
            written: (width, height, bands),
        });
    }
    let rows = ((16usize << 20) / (4 * width).max(1)).clamp(1, height);
    let mut buf = Vec::new();
    for band in 1..=bands {
        let mut y = 0;
        while y < height {
            let win = Window::new(0, y, width, rows.min(height - y));
            buf.resize(win.pixels(), 0f32);
            back.read_band(band, win, &mut buf).map_err(|e| match e {
                RasterError::Read { msg, .. } => StepError::ReadBack {
                    band,
                    window: win,
                    msg,
                },
                other => StepError::Raster(other),
            })?;
            if let Some(msg) = take_gdal_failure() {
                return Err(StepError::ReadBack {
                    band,
                    window: win,
                    msg,
                });
            }
            y += win.height;
        }
    }
    Ok(())
}

/// `msg` with the OS reason in front when the output's file system is full and `msg`
/// does not say so already.
fn with_os_reason(msg: String, output: &Path) -> String {
    let dir = output.parent().unwrap_or(Path::new("."));
    match crate::output::os_reason(dir) {
        Some(reason) if !msg.contains(&reason) => format!("{reason}; {msg}"),
        _ => msg,
    }
}

impl Drop for GeoTiffWriter {
    fn drop(&mut self) {
        // Not finished: close GDAL's handle before `temp` deletes the partial file.
        drop(self.dataset.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overviews_stop_at_256_pixels() {
        assert_eq!(overview_factors(512, 300), vec![2]);
        assert_eq!(overview_factors(8192, 100), vec![2, 4, 8, 16, 32]);
        assert!(overview_factors(300, 200).is_empty());
    }

    #[test]
    fn window_intersection_is_the_common_rectangle() {
        let a = Window::new(0, 0, 10, 10);
        let b = Window::new(5, 8, 10, 10);
        assert_eq!(a.intersect(&b), Some(Window::new(5, 8, 5, 2)));
        assert_eq!(a.intersect(&Window::new(10, 0, 3, 3)), None);
    }
}
