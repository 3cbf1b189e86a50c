//! How an output was made, written into the output itself: every raster `risk-infer`
//! writes (class map, probabilities, uncertainty; `risk-infer mosaic` keeps them) carries
//! metadata items naming the tool and its version, each model's path, version and
//! SHA-256, the input, its bands, the tile plan, the ensemble / TTA / scales, the CRF
//! preset and its parameters, the decision rule, the shard and the UTC time. A map handed
//! to another team months later can then be traced to the exact model file and settings
//! (`gdalinfo` lists the items; `risk-infer --info OUT.tif` prints them with the class
//! map's attribute table, [`describe_raster`]).
//!
//! The items are plain GDAL metadata of the default domain, stored inside the GeoTIFF
//! (its `GDAL_METADATA` tag), so they survive copies of the file alone; their keys start
//! with [`PREFIX`]. The standard `TIFFTAG_SOFTWARE` and `TIFFTAG_DATETIME` are set too,
//! which other TIFF readers show.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::raster::{InputRaster, RasterError};

/// Prefix of the provenance metadata keys.
pub const PREFIX: &str = "RISK_";

/// Metadata key of the shard a part was made by (rewritten by the mosaic).
pub const SHARD_KEY: &str = "RISK_SHARD";

/// One model of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRecord {
    pub path: String,
    pub version: String,
    pub sha256: String,
}

impl ModelRecord {
    /// The record of the model file at `path` (its SHA-256 read from the file).
    pub fn of(path: &Path, version: Option<&str>) -> std::io::Result<Self> {
        Ok(Self {
            path: absolute(path),
            version: version.unwrap_or("unversioned").to_string(),
            sha256: sha256_file(path)?,
        })
    }
}

/// The settings of a run, as written into its outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    /// `risk-infer 0.1.0`.
    pub tool: String,
    /// The ensemble's members (one for a single model).
    pub models: Vec<ModelRecord>,
    /// Input bands fed to the model, 1-based.
    pub bands: Vec<usize>,
    pub tile: usize,
    pub overlap: usize,
    /// `none`, `flips` or `d4`.
    pub tta: String,
    pub scales: Vec<f32>,
    /// `off`, or the preset and every parameter.
    pub crf: String,
    /// The decision rule in words ([`crate::decision::Decision::describe`]).
    pub decision: String,
    /// `I/N (rows r0..r1 of H)`, or `none`.
    pub shard: String,
    /// UTC time of the run, ISO 8601 (`2026-12-06T19:30:00Z`).
    pub created: String,
}

impl Provenance {
    /// The metadata items of the output made from `input`.
    pub fn items(&self, input: &Path) -> Vec<(String, String)> {
        let join =
            |f: &dyn Fn(&ModelRecord) -> String| self.models.iter().map(f).collect::<Vec<_>>().join("; ");
        let list = |v: Vec<String>| v.join(",");
        let mut items = vec![
            ("TIFFTAG_SOFTWARE", self.tool.clone()),
            ("TIFFTAG_DATETIME", tiff_datetime(&self.created)),
            ("RISK_TOOL", self.tool.clone()),
            ("RISK_CREATED_UTC", self.created.clone()),
            ("RISK_INPUT", absolute(input)),
            ("RISK_MODEL", join(&|m| m.path.clone())),
            ("RISK_MODEL_VERSION", join(&|m| m.version.clone())),
            ("RISK_MODEL_SHA256", join(&|m| m.sha256.clone())),
            (
                "RISK_ENSEMBLE",
                format!("{} model(s), probabilities averaged", self.models.len()),
            ),
            (
                "RISK_BANDS",
                list(self.bands.iter().map(usize::to_string).collect()),
            ),
            (
                "RISK_TILE",
                format!("{} px, overlap {} px", self.tile, self.overlap),
            ),
            ("RISK_TTA", self.tta.clone()),
            (
                "RISK_SCALES",
                list(self.scales.iter().map(f32::to_string).collect()),
            ),
            ("RISK_CRF", self.crf.clone()),
            ("RISK_DECISION", self.decision.clone()),
            (SHARD_KEY, self.shard.clone()),
        ];
        items.retain(|(_, v)| !v.is_empty());
        items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// The mosaic's metadata: the parts' items, with the shard entry saying it was joined.
pub fn joined(metadata: &mut [(String, String)], parts: usize) {
    for (k, v) in metadata.iter_mut() {
        if k == SHARD_KEY {
            *v = format!("{parts} part(s) joined by risk-infer mosaic (first part: {v})");
        }
    }
}

/// The provenance of a file derived from a raster (the vector zones, the review queue):
/// the raster's `RISK_*` items and `RISK_DERIVED` saying what was made from which file.
pub fn derived(raster: &InputRaster, what: String) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = raster
        .metadata()
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect();
    items.push((
        "RISK_DERIVED".into(),
        format!("{what} of {}", absolute(raster.path())),
    ));
    items
}

/// Sets metadata items on a vector dataset (a GeoPackage keeps them in its metadata
/// table; a driver without dataset metadata ignores them).
pub(crate) fn set_items(ds: &mut gdal::Dataset, items: &[(String, String)]) {
    use gdal::Metadata;
    for (k, v) in items {
        let _ = ds.set_metadata_item(k, v, "");
    }
}

/// Lowercase hex SHA-256 of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }))
}

/// The time now in UTC, ISO 8601 to the second.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_iso(secs)
}

/// Seconds since 1970-01-01 UTC as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian; the
/// days-to-civil-date conversion of H. Hinnant's `civil_from_days`).
pub fn utc_iso(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// TIFF's `YYYY:MM:DD HH:MM:SS` of an ISO 8601 UTC time.
fn tiff_datetime(iso: &str) -> String {
    match iso.get(..19) {
        Some(s) if iso.len() == 20 => s.replacen('-', ":", 2).replace('T', " "),
        _ => String::new(),
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// `risk-infer --info OUT.tif`: the raster's size and grid, its bands, every metadata item
/// of the default domain (the provenance among them) and band 1's attribute table.
pub fn describe_raster(path: &Path) -> Result<String, RasterError> {
    let r = InputRaster::open(path)?;
    let mut s = String::new();
    let georef = r.georef();
    let _ = writeln!(s, "raster       {}", path.display());
    let _ = writeln!(
        s,
        "size         {} x {} px, {} band(s) of {}",
        r.width(),
        r.height(),
        r.band_count(),
        r.band_type_name(1)?
    );
    if !georef.projection.is_empty() {
        let _ = writeln!(s, "crs          {}", georef.crs_name());
    }
    if let Some(gt) = georef.geo_transform {
        let _ = writeln!(s, "pixel        {} x {} (CRS units)", gt[1], gt[5].abs());
    }
    let description = r.description()?;
    for (b, d) in description.band_descriptions.iter().enumerate() {
        let _ = writeln!(s, "band {:<7} {d}", b + 1);
    }
    let items = r.metadata();
    if items.is_empty() {
        let _ = writeln!(s, "metadata     none (not written by risk-infer?)");
    } else {
        let _ = writeln!(s, "metadata:");
        for (k, v) in &items {
            let _ = writeln!(s, "  {k} = {v}");
        }
    }
    match r.attribute_table(1)? {
        None => {
            let _ = writeln!(s, "attribute table: none");
        }
        Some(t) => {
            let _ = writeln!(s, "attribute table (band 1, {} rows):", t.rows.len());
            let widths: Vec<usize> = (0..t.columns.len())
                .map(|k| {
                    t.rows
                        .iter()
                        .map(|row| row.get(k).map_or(0, String::len))
                        .chain([t.columns[k].name.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<&str>| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                format!("  {}", padded.join("  ").trim_end())
            };
            let _ = writeln!(s, "{}", line(t.columns.iter().map(|c| c.name.as_str()).collect()));
            for row in &t.rows {
                let _ = writeln!(s, "{}", line(row.iter().map(String::as_str).collect()));
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_known_calendar_days() {
        assert_eq!(utc_iso(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 12:34:56 UTC (a leap day of a year divisible by 400): `date -d`.
        assert_eq!(utc_iso(951_827_696), "2000-02-29T12:34:56Z");
        // 2026-12-06 19:30:00 UTC.
        assert_eq!(utc_iso(1_796_585_400), "2026-12-06T19:30:00Z");
        assert_eq!(tiff_datetime("2026-12-06T19:30:00Z"), "2026:12:06 19:30:00");
    }

    #[test]
    fn sha256_of_a_file_matches_the_standard_vector() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        // FIPS 180-2's test vector for "abc".
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_mosaic_says_it_joined_parts() {
        let mut items = vec![
            ("RISK_TOOL".to_string(), "t".to_string()),
            (SHARD_KEY.to_string(), "0/4".to_string()),
        ];
        joined(&mut items, 4);
        assert_eq!(items[0].1, "t");
        assert_eq!(
            items[1].1,
            "4 part(s) joined by risk-infer mosaic (first part: 0/4)"
        );
    }
}
