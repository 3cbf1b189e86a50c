//! Vector risk zones: the finished class map as polygons, one per connected zone of one
//! class, with the class, its name, the pixel count, the area and (when the run wrote
//! them) the zone's mean probability of its class and mean uncertainty. Hazard teams hand
//! over polygons (a GeoPackage) more often than rasters.
//!
//! How, in four streaming passes over the class map (row bands of [`ZoneOptions::band_rows`]
//! rows; memory is a band of rows plus one table entry per zone, never the raster):
//!
//! 1. **Specks** (`min_area` > 1): GDAL's sieve filter (`GDALSieveFilter`) runs on a
//!    temporary copy of the map, merging every zone of fewer pixels into its largest
//!    neighbour. A speck with no neighbour (enclosed by nodata) is dropped in step 3. The
//!    polygons are then exactly the zones of that sieved map: every kept pixel lies in
//!    one polygon, and a polygon's area is its pixel count times the pixel area.
//! 2. **Zones**: a connected-component labelling, 4- or 8-connected, row by row; zones
//!    that meet across row bands (a U whose arms join lower down) are merged with a
//!    union-find table, so a zone crossing a band boundary is one zone. The pass sums each
//!    zone's pixels, probability and uncertainty.
//! 3. **Zone ids**: the same labelling again, writing each pixel's final zone id into a
//!    temporary Int32 GeoTIFF (0 for nodata and dropped specks).
//! 4. **Polygons**: `GDALPolygonize` on the zone ids (it reads scanline by scanline and
//!    keeps only the polygons still open at the current line) into a temporary
//!    GeoPackage, whose features are then copied, with their fields, into the output.
//!
//! The output (driver by extension: `.gpkg` GeoPackage, `.geojson` / `.json` GeoJSON;
//! formats that write several files or a folder, such as shapefiles, are refused) is
//! written to a temporary beside its final name, reopened and its features counted, and
//! only then renamed into place, as [`crate::output`] does for every file.
//!
//! Area is in the CRS's units, stated in the field's name: `area_m2` for a metre CRS,
//! `area_ft2` for feet, `area_deg2` for a geographic CRS (degrees are not an area; project
//! the map first), `area_px` without georeferencing.
//!
//! Errors ([`VectorError`]) name the file they concern and keep GDAL's message; a
//! finished file that fails its check says why in a [`CheckError`].

use std::path::{Path, PathBuf};

use gdal::vector::{Feature, FieldDefn, LayerAccess, LayerOptions, OGRFieldType};
use gdal::{Dataset, DatasetOptions, DriverManager, GdalOpenFlags};

use crate::classes::{CLASS_NAMES, NODATA, NUM_CLASSES};
use crate::output::{OutputError, TempOutput};
use crate::raster::{GeoTiffWriter, InputRaster, RasterError, Window, WriteOptions};

/// SQLite's rollback journal beside a GeoPackage being written: removed with an
/// interrupted temporary, and a stale one beside the final name (SQLite would replay it
/// into the new file) removed when the output is put in place.
pub(crate) const JOURNAL: &str = "-journal";

/// Why the zones could not be written; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// An output name whose extension is not a vector format written here.
    #[error(
        "{}: vector zones are written as .gpkg (GeoPackage) or .geojson (GeoJSON); \
         other formats (a shapefile is several files) can be made from the GeoPackage with ogr2ogr",
        path.display()
    )]
    Format { path: PathBuf },
    #[error(transparent)]
    Raster(#[from] RasterError),
    /// A raster of scores (probabilities, uncertainty) not on the class map's grid.
    #[error("{}: is {}x{}, the class map {}x{}", path.display(), size.0, size.1, map.0, map.1)]
    Size {
        path: PathBuf,
        size: (usize, usize),
        map: (usize, usize),
    },
    /// GDAL failed at step `what` (its message kept).
    #[error("{}: {what} ({err})", path.display())]
    Gdal {
        path: PathBuf,
        what: String,
        err: gdal::errors::GdalError,
    },
    /// A GDAL call that reports no message failed (`what`: which).
    #[error("{}: {what}", path.display())]
    Failed { path: PathBuf, what: &'static str },
    #[error("{}: polygon of an unknown zone {zone}", path.display())]
    UnknownZone { path: PathBuf, zone: i32 },
    /// The finished file failed its check or could not be put in place.
    #[error("{}: {err}", path.display())]
    Check { path: PathBuf, err: CheckError },
}

/// Why a finished vector file was not put in place (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("reading it back failed ({0})")]
    Reopen(gdal::errors::GdalError),
    #[error("read back {got} features, {expected} written")]
    Count { got: usize, expected: usize },
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// How zones are formed and what they carry.
#[derive(Clone, Debug)]
pub struct ZoneOptions {
    /// Zones of fewer pixels are merged into their largest neighbour first (0 or 1: none).
    pub min_area: usize,
    /// Pixels touching at a corner belong to one zone (else only at an edge).
    pub eight_connected: bool,
    /// Class probabilities on the map's grid (3 bands, u8 x 255 or f32): each zone's
    /// mean probability of its class.
    pub probs: Option<PathBuf>,
    /// Uncertainty on the map's grid (band 1 entropy, band 2 mutual information when
    /// present): each zone's means.
    pub uncertainty: Option<PathBuf>,
    /// Rows per streaming band.
    pub band_rows: usize,
}

impl Default for ZoneOptions {
    fn default() -> Self {
        Self {
            min_area: 0,
            eight_connected: false,
            probs: None,
            uncertainty: None,
            band_rows: 256,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZoneReport {
    /// Features written, per class.
    pub zones: [usize; NUM_CLASSES],
    /// Pixels in the written zones, per class.
    pub pixels: [u64; NUM_CLASSES],
    /// Specks enclosed by nodata (no neighbour to merge into), dropped.
    pub dropped: usize,
    /// The area field's name (`area_m2`, ...).
    pub area_field: String,
}

/// The OGR driver for an output name, by extension; an error names the supported ones.
pub fn driver_for(path: &Path) -> Result<&'static str, VectorError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "gpkg" => Ok("GPKG"),
        "geojson" | "json" => Ok("GeoJSON"),
        _ => Err(VectorError::Format {
            path: path.to_path_buf(),
        }),
    }
}

/// One zone's sums.
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    class: u8,
    pixels: u64,
    prob: f64,
    entropy: f64,
    mutual_info: f64,
}

/// Streaming connected-component labelling: provisional labels per pixel, merged through
/// a union-find table when zones meet. Running it twice over the same rows gives the
/// same provisional labels, which is how pass 3 finds every pixel's zone.
struct Labeller {
    eight: bool,
    prev: Vec<u32>,
    prev_class: Vec<u8>,
    /// Union-find parent of each provisional label (index 0 unused).
    parent: Vec<u32>,
}

impl Labeller {
    fn new(width: usize, eight: bool) -> Self {
        Self {
            eight,
            prev: vec![0; width],
            prev_class: vec![NODATA; width],
            parent: vec![0],
        }
    }

    fn find(&mut self, mut a: u32) -> u32 {
        while self.parent[a as usize] != a {
            let grand = self.parent[self.parent[a as usize] as usize];
            self.parent[a as usize] = grand;
            a = grand;
        }
        a
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The older label stays the root (zone numbers follow the first pixel).
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi as usize] = lo;
        }
    }

    /// Labels one row of classes (`NODATA` = no zone) into `out`; new labels are pushed
    /// to the table.
    fn row(&mut self, classes: &[u8], out: &mut [u32]) {
        let w = classes.len();
        for x in 0..w {
            let c = classes[x];
            if c == NODATA {
                out[x] = 0;
                continue;
            }
            let mut label = 0;
            let join = |label: &mut u32, other: u32, this: &mut Self| {
                if other == 0 {
                    return;
                }
                if *label == 0 {
                    *label = other;
                } else if *label != other {
                    this.union(*label, other);
                }
            };
            if x > 0 && classes[x - 1] == c {
                join(&mut label, out[x - 1], self);
            }
            if self.prev_class[x] == c {
                join(&mut label, self.prev[x], self);
            }
            if self.eight {
                if x > 0 && self.prev_class[x - 1] == c {
                    join(&mut label, self.prev[x - 1], self);
                }
                if x + 1 < w && self.prev_class[x + 1] == c {
                    join(&mut label, self.prev[x + 1], self);
                }
            }
            if label == 0 {
                label = self.parent.len() as u32;
                self.parent.push(label);
            }
            out[x] = label;
        }
        self.prev.copy_from_slice(out);
        self.prev_class.copy_from_slice(classes);
    }
}

/// GDAL's failure at step `what` on the file `path`.
fn gdal_err(path: &Path, what: &str, err: gdal::errors::GdalError) -> VectorError {
    VectorError::Gdal {
        path: path.to_path_buf(),
        what: what.to_string(),
        err,
    }
}

/// A failed GDAL call without a message, on the file `path`.
fn failed(path: &Path, what: &'static str) -> VectorError {
    VectorError::Failed {
        path: path.to_path_buf(),
        what,
    }
}

/// Reads rows of the class map and, where asked, of the probability and uncertainty
/// rasters, band by band.
struct Rows {
    classes: InputRaster,
    probs: Option<(InputRaster, f32)>,
    uncertainty: Option<(InputRaster, f32)>,
}

/// A raster on the class map's grid, with the factor from its values to [0, 1].
fn scores(path: &Path, width: usize, height: usize) -> Result<(InputRaster, f32), VectorError> {
    let r = InputRaster::open(path)?;
    if (r.width(), r.height()) != (width, height) {
        return Err(VectorError::Size {
            path: path.to_path_buf(),
            size: (r.width(), r.height()),
            map: (width, height),
        });
    }
    let scale = if r.band_type_name(1)? == "Byte" {
        1.0 / 255.0
    } else {
        1.0
    };
    Ok((r, scale))
}

/// Writes the zones of the class map `classes` to the vector file `output`.
pub fn write_zones(classes: &Path, output: &Path, opts: &ZoneOptions) -> Result<ZoneReport, VectorError> {
    let driver_name = driver_for(output)?;
    crate::raster::quiet_gdal_errors();
    let map = InputRaster::open(classes)?;
    let (width, height) = (map.width(), map.height());
    let georef = map.georef();
    let provenance = crate::provenance::derived(
        &map,
        format!(
            "zones ({}-connected, minimum {} px)",
            if opts.eight_connected { 8 } else { 4 },
            opts.min_area.max(1)
        ),
    );
    // Step 1: the sieve, on a temporary copy.
    let sieved = if opts.min_area > 1 {
        let temp = TempOutput::new(output, "sieve");
        sieve_copy(&map, temp.path(), opts)?;
        Some(temp)
    } else {
        None
    };
    drop(map);
    let source = sieved.as_ref().map_or(classes, |t| t.path());
    let mut rows = Rows {
        classes: InputRaster::open(source)?,
        probs: opts
            .probs
            .as_deref()
            .map(|p| scores(p, width, height))
            .transpose()?,
        uncertainty: opts
            .uncertainty
            .as_deref()
            .map(|p| scores(p, width, height))
            .transpose()?,
    };
    let band_rows = opts.band_rows.max(1);
    // Step 2: label and sum.
    let mut labeller = Labeller::new(width, opts.eight_connected);
    let mut sums: Vec<Sums> = vec![Sums::default()];
    let mut buf = BandBuffers::default();
    let mut labels = vec![0u32; width];
    let mut y0 = 0;
    while y0 < height {
        let win = Window::new(0, y0, width, band_rows.min(height - y0));
        rows.read(win, &mut buf, true)?;
        for r in 0..win.height {
            let row = &buf.classes[r * width..(r + 1) * width];
            labeller.row(row, &mut labels);
            for (x, &l) in labels.iter().enumerate() {
                if l == 0 {
                    continue;
                }
                if l as usize == sums.len() {
                    sums.push(Sums {
                        class: row[x],
                        ..Sums::default()
                    });
                }
                let s = &mut sums[l as usize];
                let i = r * width + x;
                s.pixels += 1;
                if !buf.probs.is_empty() {
                    let n = win.pixels();
                    s.prob += buf.probs[row[x] as usize * n + i] as f64;
                }
                if !buf.entropy.is_empty() {
                    s.entropy += buf.entropy[i] as f64;
                }
                if !buf.mutual_info.is_empty() {
                    s.mutual_info += buf.mutual_info[i] as f64;
                }
            }
        }
        y0 += win.height;
        rows.classes.drop_cached_blocks();
    }
    // Zones: the roots, numbered 1.. in order of their first pixel; specks still below
    // the minimum (enclosed by nodata) dropped.
    let mut zone_of = vec![0u32; sums.len()];
    let mut zones: Vec<Sums> = vec![Sums::default()];
    for l in 1..sums.len() as u32 {
        let root = labeller.find(l) as usize;
        if root != l as usize {
            let s = sums[l as usize];
            let r = &mut sums[root];
            r.pixels += s.pixels;
            r.prob += s.prob;
            r.entropy += s.entropy;
            r.mutual_info += s.mutual_info;
        }
    }
    let mut report = ZoneReport::default();
    for l in 1..sums.len() {
        if labeller.find(l as u32) as usize != l {
            continue;
        }
        if opts.min_area > 1 && (sums[l].pixels as usize) < opts.min_area {
            report.dropped += 1;
            continue;
        }
        zone_of[l] = zones.len() as u32;
        zones.push(sums[l]);
        report.zones[sums[l].class as usize] += 1;
        report.pixels[sums[l].class as usize] += sums[l].pixels;
    }
    for l in 1..sums.len() {
        let root = labeller.find(l as u32) as usize;
        zone_of[l] = zone_of[root];
    }
    drop(sums);
    // Step 3: zone ids into a temporary raster.
    let ids = TempOutput::new(output, "zones");
    {
        let mut writer = GeoTiffWriter::create::<i32>(
            ids.path(),
            width,
            height,
            1,
            &georef,
            WriteOptions {
                nodata: Some(0.0),
                ..WriteOptions::default()
            },
        )?;
        let mut again = Labeller::new(width, opts.eight_connected);
        let mut out = Vec::new();
        let mut y0 = 0;
        while y0 < height {
            let win = Window::new(0, y0, width, band_rows.min(height - y0));
            rows.read(win, &mut buf, false)?;
            out.clear();
            for r in 0..win.height {
                again.row(&buf.classes[r * width..(r + 1) * width], &mut labels);
                out.extend(labels.iter().map(|&l| zone_of[l as usize] as i32));
            }
            writer.write_band(1, win, &out)?;
            y0 += win.height;
        }
        writer.finish()?;
    }
    drop(rows);
    drop(sieved);
    // Step 4: polygons into a temporary GeoPackage, then the output with every field.
    let polygons = TempOutput::new(output, "polygons").with_sidecar(JOURNAL);
    polygonize(ids.path(), polygons.path(), opts.eight_connected)?;
    drop(ids);
    let (area_field, pixel_area) = area_unit(&georef);
    report.area_field = area_field.clone();
    let fields = Fields {
        provenance,
        area: area_field,
        pixel_area,
        probs: opts.probs.is_some(),
        entropy: opts.uncertainty.is_some(),
        mutual_info: opts
            .uncertainty
            .as_deref()
            .map(|p| InputRaster::open(p).map(|r| r.band_count() > 1))
            .transpose()?
            .unwrap_or(false),
    };
    let expected: usize = report.zones.iter().sum();
    let temp = TempOutput::new(output, "tmp").with_sidecar(JOURNAL);
    copy_features(
        polygons.path(),
        temp.path(),
        driver_name,
        &fields,
        &zones,
        &georef,
        output,
    )?;
    drop(polygons);
    temp.commit(|p| verify(p, driver_name, expected))
        .map_err(|err| VectorError::Check {
            path: output.to_path_buf(),
            err,
        })?;
    Ok(report)
}

/// Per-band buffers of [`Rows::read`].
#[derive(Default)]
struct BandBuffers {
    classes: Vec<u8>,
    /// `(3, h, w)` in [0, 1], empty without probabilities.
    probs: Vec<f32>,
    entropy: Vec<f32>,
    mutual_info: Vec<f32>,
}

impl Rows {
    /// Reads `win` of the class map, and with `scores` of the other rasters.
    fn read(&mut self, win: Window, buf: &mut BandBuffers, scores: bool) -> Result<(), RasterError> {
        let n = win.pixels();
        buf.classes.resize(n, 0);
        self.classes.read_band(1, win, &mut buf.classes)?;
        buf.probs.clear();
        buf.entropy.clear();
        buf.mutual_info.clear();
        if !scores {
            return Ok(());
        }
        if let Some((r, scale)) = &mut self.probs {
            buf.probs.resize(NUM_CLASSES * n, 0.0);
            r.read_bands(&[1, 2, 3], win, &mut buf.probs)?;
            buf.probs.iter_mut().for_each(|v| *v *= *scale);
            r.drop_cached_blocks();
        }
        if let Some((r, scale)) = &mut self.uncertainty {
            buf.entropy.resize(n, 0.0);
            r.read_band(1, win, &mut buf.entropy)?;
            buf.entropy.iter_mut().for_each(|v| *v *= *scale);
            if r.band_count() > 1 {
                buf.mutual_info.resize(n, 0.0);
                r.read_band(2, win, &mut buf.mutual_info)?;
                buf.mutual_info.iter_mut().for_each(|v| *v *= *scale);
            }
            r.drop_cached_blocks();
        }
        Ok(())
    }
}

/// A GeoTIFF copy of the class map at `path` with GDAL's sieve filter applied.
fn sieve_copy(map: &InputRaster, path: &Path, opts: &ZoneOptions) -> Result<(), VectorError> {
    let mut writer = GeoTiffWriter::create::<u8>(
        path,
        map.width(),
        map.height(),
        1,
        &map.georef(),
        WriteOptions {
            nodata: Some(NODATA as f64),
            ..WriteOptions::default()
        },
    )?;
    let band_rows = opts.band_rows.max(1);
    let mut buf = Vec::new();
    let mut y0 = 0;
    while y0 < map.height() {
        let win = Window::new(0, y0, map.width(), band_rows.min(map.height() - y0));
        buf.resize(win.pixels(), 0u8);
        map.read_band(1, win, &mut buf)?;
        // Pixels outside the classes are nodata (the mask the sieve leaves alone).
        buf.iter_mut()
            .filter(|v| (**v as usize) >= NUM_CLASSES)
            .for_each(|v| *v = NODATA);
        writer.write_band(1, win, &buf)?;
        y0 += win.height;
    }
    writer.finish()?;
    let ds = Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_RASTER | GdalOpenFlags::GDAL_OF_UPDATE,
            ..DatasetOptions::default()
        },
    )
    .map_err(|e| gdal_err(path, "cannot reopen for the sieve", e))?;
    let band = ds.rasterband(1).map_err(|e| gdal_err(path, "band 1", e))?;
    let connectedness = if opts.eight_connected { 8 } else { 4 };
    // SAFETY: source and destination are the same open band (GDAL allows it), the mask
    // is that band's own nodata mask, and no options, progress or callback data.
    let rc = unsafe {
        let h = band.c_rasterband();
        gdal_sys::GDALSieveFilter(
            h,
            gdal_sys::GDALGetMaskBand(h),
            h,
            opts.min_area as i32,
            connectedness,
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
        )
    };
    if rc != gdal_sys::CPLErr::CE_None {
        return Err(failed(path, "GDAL's sieve filter failed"));
    }
    ds.close()
        .map_err(|e| gdal_err(path, "closing the sieved copy", e))?;
    Ok(())
}

/// `GDALPolygonize` of the zone ids at `ids` into a new GeoPackage at `path`, layer
/// `zones`, field `zone`.
fn polygonize(ids: &Path, path: &Path, eight: bool) -> Result<(), VectorError> {
    let raster = Dataset::open(ids).map_err(|e| gdal_err(ids, "cannot reopen the zone ids", e))?;
    let band = raster.rasterband(1).map_err(|e| gdal_err(ids, "band 1", e))?;
    let driver =
        DriverManager::get_driver_by_name("GPKG").map_err(|e| gdal_err(path, "GeoPackage driver", e))?;
    let mut ds = driver
        .create_vector_only(path)
        .map_err(|e| gdal_err(path, "cannot create", e))?;
    let srs = raster.spatial_ref().ok();
    let ds_h = ds.c_dataset();
    let layer = ds
        .create_layer(LayerOptions {
            name: "zones",
            srs: srs.as_ref(),
            ty: gdal_sys::OGRwkbGeometryType::wkbPolygon,
            options: Some(&["SPATIAL_INDEX=NO"]),
        })
        .map_err(|e| gdal_err(path, "cannot create its layer", e))?;
    FieldDefn::new("zone", OGRFieldType::OFTInteger)
        .and_then(|f| f.add_to_layer(&layer))
        .map_err(|e| gdal_err(path, "cannot add a field", e))?;
    let options = if eight { vec!["8CONNECTED=8"] } else { Vec::new() };
    let mut c_options = gdal::cpl::CslStringList::new();
    for o in &options {
        let (k, v) = o.split_once('=').expect("KEY=VALUE");
        c_options
            .set_name_value(k, v)
            .map_err(|e| gdal_err(path, "polygonize options", e))?;
    }
    // SAFETY: valid band, mask and layer handles that outlive the call; the field index
    // 0 is the `zone` field created above; no progress callback. The transaction makes
    // the GeoPackage's inserts one commit instead of one per polygon.
    let rc = unsafe {
        let h = band.c_rasterband();
        gdal_sys::GDALDatasetStartTransaction(ds_h, 0);
        let rc = gdal_sys::GDALPolygonize(
            h,
            gdal_sys::GDALGetMaskBand(h),
            layer.c_layer(),
            0,
            c_options.as_ptr(),
            None,
            std::ptr::null_mut(),
        );
        let committed = gdal_sys::GDALDatasetCommitTransaction(ds_h);
        if rc == gdal_sys::CPLErr::CE_None && committed != gdal_sys::OGRErr::OGRERR_NONE {
            gdal_sys::CPLErr::CE_Failure
        } else {
            rc
        }
    };
    if rc != gdal_sys::CPLErr::CE_None {
        return Err(failed(path, "GDAL's polygonize failed"));
    }
    ds.close().map_err(|e| gdal_err(path, "closing", e))?;
    Ok(())
}

/// The output's fields beyond `zone`, `class`, `name`, `pixels`.
struct Fields {
    /// Metadata items of the output dataset.
    provenance: Vec<(String, String)>,
    area: String,
    pixel_area: f64,
    probs: bool,
    entropy: bool,
    mutual_info: bool,
}

/// The area field's name and one pixel's area in the CRS's units (see the module docs).
fn area_unit(georef: &crate::raster::GeoRef) -> (String, f64) {
    let Some(gt) = georef.geo_transform else {
        return ("area_px".into(), 1.0);
    };
    let pixel_area = (gt[1] * gt[5] - gt[2] * gt[4]).abs();
    let srs = (!georef.projection.is_empty())
        .then(|| gdal::spatial_ref::SpatialRef::from_wkt(&georef.projection).ok())
        .flatten();
    let name = match srs {
        None => "area_px".to_string(),
        Some(s) if s.is_geographic() => "area_deg2".into(),
        Some(s) => {
            let unit = s.linear_units_name().unwrap_or_default().to_ascii_lowercase();
            if unit.starts_with("met") {
                "area_m2".into()
            } else if unit.contains("foot") || unit.contains("feet") {
                "area_ft2".into()
            } else {
                let clean: String = unit.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                format!("area_{clean}2")
            }
        }
    };
    (name, pixel_area)
}

/// Copies the polygons of `from` into a new `driver` file at `to`, layer `zones`, with
/// every field filled from the zone sums. `output` names the final file in errors.
fn copy_features(
    from: &Path,
    to: &Path,
    driver: &str,
    fields: &Fields,
    zones: &[Sums],
    georef: &crate::raster::GeoRef,
    output: &Path,
) -> Result<(), VectorError> {
    let named = |what: &str, e: gdal::errors::GdalError| gdal_err(output, what, e);
    let src = Dataset::open(from).map_err(|e| named("cannot reopen the polygons", e))?;
    let mut src_layer = src.layer(0).map_err(|e| named("polygons", e))?;
    let drv = DriverManager::get_driver_by_name(driver).map_err(|e| named("driver", e))?;
    let mut dst = drv
        .create_vector_only(to)
        .map_err(|e| named("cannot create", e))?;
    crate::provenance::set_items(&mut dst, &fields.provenance);
    let srs = (!georef.projection.is_empty())
        .then(|| gdal::spatial_ref::SpatialRef::from_wkt(&georef.projection).ok())
        .flatten();
    let dst_h = dst.c_dataset();
    let mut names: Vec<(&str, OGRFieldType::Type)> = vec![
        ("zone", OGRFieldType::OFTInteger),
        ("class", OGRFieldType::OFTInteger),
        ("name", OGRFieldType::OFTString),
        ("pixels", OGRFieldType::OFTInteger64),
        (fields.area.as_str(), OGRFieldType::OFTReal),
    ];
    if fields.probs {
        names.push(("mean_prob", OGRFieldType::OFTReal));
    }
    if fields.entropy {
        names.push(("mean_entropy", OGRFieldType::OFTReal));
    }
    if fields.mutual_info {
        names.push(("mean_mi", OGRFieldType::OFTReal));
    }
    let dst_layer = dst
        .create_layer(LayerOptions {
            name: "zones",
            srs: srs.as_ref(),
            ty: gdal_sys::OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .map_err(|e| named("cannot create its layer", e))?;
    dst_layer
        .create_defn_fields(&names)
        .map_err(|e| named("cannot add its fields", e))?;
    // SAFETY: a valid dataset handle; a driver without transactions refuses (ignored).
    let in_transaction =
        unsafe { gdal_sys::GDALDatasetStartTransaction(dst_h, 0) } == gdal_sys::OGRErr::OGRERR_NONE;
    for feature in src_layer.features() {
        let zone = feature
            .field_as_integer(0)
            .map_err(|e| named("polygons", e))?
            .unwrap_or(0);
        let Some(s) = zones.get(zone as usize).filter(|_| zone > 0) else {
            return Err(VectorError::UnknownZone {
                path: output.to_path_buf(),
                zone,
            });
        };
        let Some(geometry) = feature.geometry() else {
            continue;
        };
        let n = s.pixels as f64;
        let mut out = Feature::new(dst_layer.defn()).map_err(|e| named("feature", e))?;
        out.set_geometry(geometry.clone())
            .map_err(|e| named("geometry", e))?;
        let set = |out: &mut Feature<'_>| -> gdal::errors::Result<()> {
            out.set_field_integer(0, zone)?;
            out.set_field_integer(1, s.class as i32)?;
            out.set_field_string(2, CLASS_NAMES[s.class as usize])?;
            out.set_field_integer64(3, s.pixels as i64)?;
            out.set_field_double(4, n * fields.pixel_area)?;
            let mut k = 5;
            for (on, sum) in [
                (fields.probs, s.prob),
                (fields.entropy, s.entropy),
                (fields.mutual_info, s.mutual_info),
            ] {
                if on {
                    out.set_field_double(k, sum / n)?;
                    k += 1;
                }
            }
            Ok(())
        };
        set(&mut out).map_err(|e| named("fields", e))?;
        out.create(&dst_layer)
            .map_err(|e| named(&format!("writing zone {zone}"), e))?;
    }
    if in_transaction {
        // SAFETY: the transaction started above on this dataset.
        let rc = unsafe { gdal_sys::GDALDatasetCommitTransaction(dst_h) };
        if rc != gdal_sys::OGRErr::OGRERR_NONE {
            return Err(failed(output, "committing the features failed"));
        }
    }
    dst.close().map_err(|e| named("closing", e))?;
    Ok(())
}

/// Reopens the finished vector file and checks it holds `expected` features.
pub(crate) fn verify(path: &Path, driver: &str, expected: usize) -> Result<(), CheckError> {
    let ds = Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_VECTOR,
            allowed_drivers: Some(&[driver]),
            ..DatasetOptions::default()
        },
    )
    .map_err(CheckError::Reopen)?;
    let layer = ds.layer(0).map_err(CheckError::Reopen)?;
    let n = layer.feature_count() as usize;
    if n != expected {
        return Err(CheckError::Count { got: n, expected });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zones of a small map by hand: `rows` of class digits, `.` nodata.
    fn zones_of(rows: &[&str], eight: bool) -> Vec<u32> {
        let w = rows[0].len();
        let mut l = Labeller::new(w, eight);
        let mut all = Vec::new();
        let mut out = vec![0u32; w];
        for r in rows {
            let classes: Vec<u8> = r
                .bytes()
                .map(|b| if b == b'.' { NODATA } else { b - b'0' })
                .collect();
            l.row(&classes, &mut out);
            all.extend_from_slice(&out);
        }
        all.into_iter()
            .map(|a| if a == 0 { 0 } else { l.find(a) })
            .collect()
    }

    fn count(z: &[u32]) -> usize {
        let mut v: Vec<u32> = z.iter().copied().filter(|&a| a > 0).collect();
        v.sort();
        v.dedup();
        v.len()
    }

    #[test]
    fn a_u_shape_is_one_zone_and_diagonals_join_only_when_eight_connected() {
        // A U of 1s whose arms meet at the bottom: two labels at first, one zone.
        let u = ["1001", "1001", "1111"];
        let z = zones_of(&u, false);
        assert_eq!(count(&z), 2, "the U and the 0s inside it: {z:?}");
        assert_eq!(z[0], z[3]);
        // A diagonal: two zones of 1 (4-connected), one (8-connected).
        let d = ["10", "01"];
        assert_eq!(count(&zones_of(&d, false)), 4);
        assert_eq!(count(&zones_of(&d, true)), 2);
        // Nodata splits a zone.
        assert_eq!(count(&zones_of(&["1.1"], false)), 2);
    }

    #[test]
    fn drivers_by_extension() {
        assert_eq!(driver_for(Path::new("a/zones.GPKG")).ok(), Some("GPKG"));
        assert_eq!(driver_for(Path::new("z.geojson")).ok(), Some("GeoJSON"));
        let e = driver_for(Path::new("z.shp")).unwrap_err().to_string();
        assert!(e.contains("z.shp") && e.contains(".gpkg"), "{e}");
    }
}
