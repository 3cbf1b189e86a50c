//! The input domain: which pixel type a model expects, and what to do with a raster of
//! another type (`--input-scale`).
//!
//! A model's `risk.scale` turns raw values of one pixel type into the range it was trained
//! on; applied to another type it gives a confident, meaningless map (uint16 reflectance
//! x 10000 times 1/255 is mostly far beyond the range). So before scoring, each model band
//! of the raster is checked against the expected type: the model's `risk.input_type` (a
//! GDAL type name such as `Byte`), or, for models without it, `Byte` when every
//! `risk.scale` factor is 1/255. A model with neither states no type and is not checked.
//!
//! [`InputScale::Auto`] (the default):
//! - the expected type: the model's `risk.scale`, as always;
//! - `UInt16` for a `Byte` model: read as surface reflectance x 10000 (the convention of
//!   Sentinel-2 L2A, and of the synthetic uint16 scenes), i.e. the factor becomes
//!   `risk.scale x 255 / 10000`, so that a reflectance gives the model the value its
//!   `Byte` twin (`reflectance x 255`) would. One warning line per raster names the rule;
//! - any other type: refused, with one line saying how to choose.
//!
//! [`InputScale::Model`] applies `risk.scale` to any type, unchecked (the behaviour before
//! the check). [`InputScale::Factor`] multiplies raw values by a given number instead of
//! `risk.scale` (the model's `risk.mean` / `risk.std` still follow).

use std::str::FromStr;

use crate::session::ModelInfo;

/// How raw raster values are scaled before the model's normalisation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum InputScale {
    /// The model's scale for its own type; the documented rule or a refusal otherwise.
    #[default]
    Auto,
    /// The model's `risk.scale`, whatever the raster's type.
    Model,
    /// This factor for every band instead of `risk.scale`.
    Factor(f32),
}

/// An `--input-scale` value that is not `auto`, `model` or a positive number (the text
/// given).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not auto, model or a positive number (e.g. 0.0001)")]
pub struct ParseInputScaleError(pub String);

impl FromStr for InputScale {
    type Err = ParseInputScaleError;

    fn from_str(s: &str) -> Result<Self, ParseInputScaleError> {
        match s {
            "auto" => Ok(Self::Auto),
            "model" => Ok(Self::Model),
            _ => match s.parse::<f32>() {
                Ok(f) if f.is_finite() && f > 0.0 => Ok(Self::Factor(f)),
                _ => Err(ParseInputScaleError(s.to_string())),
            },
        }
    }
}

/// Reflectance x this factor is the uint16 convention [`InputScale::Auto`] assumes.
pub const UINT16_REFLECTANCE: f32 = 10000.0;

/// The pixel type the model's `risk.scale` is meant for, if it says or implies one.
pub fn expected_type(info: &ModelInfo) -> Option<String> {
    if let Some(t) = info.properties.get("risk.input_type") {
        return Some(t.trim().to_string());
    }
    let byte = info
        .scale
        .as_ref()
        .is_some_and(|s| s.iter().all(|&f| (f * 255.0 - 1.0).abs() < 1e-4));
    byte.then(|| "Byte".to_string())
}

/// A band of a pixel type the model was not trained on, which no rule rescales (the
/// refusal of [`band_scales`] with `--input-scale auto`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "band {band} is {found} but the model expects {expected} (risk.scale {scale}); pass --input-scale <factor> \
     (raw value x factor = what the model's {expected} input x risk.scale gives), or --input-scale model \
     to apply risk.scale unchanged"
)]
pub struct TypeMismatch {
    pub band: usize,
    pub found: String,
    pub expected: String,
    pub scale: f32,
}

/// Scales of the model bands, one per entry of `types` (the raster's GDAL type name of
/// each band), and the warning to log once, if a rule other than the model's applied.
/// `Err` is the one-line refusal (without the file name).
pub fn band_scales(
    info: &ModelInfo,
    bands: &[usize],
    types: &[String],
    choice: InputScale,
) -> Result<(Vec<f32>, Option<String>), TypeMismatch> {
    let model: Vec<f32> = types
        .iter()
        .enumerate()
        .map(|(i, t)| info.scale_for(i, t))
        .collect();
    match choice {
        InputScale::Model => return Ok((model, None)),
        InputScale::Factor(f) => return Ok((vec![f; types.len()], None)),
        InputScale::Auto => {}
    }
    let Some(expected) = expected_type(info) else {
        return Ok((model, None));
    };
    let mut rescaled = false;
    let mut scales = model;
    for (i, t) in types.iter().enumerate() {
        if *t == expected {
            continue;
        }
        if t == "UInt16" && expected == "Byte" {
            scales[i] *= 255.0 / UINT16_REFLECTANCE;
            rescaled = true;
            continue;
        }
        return Err(TypeMismatch {
            band: bands[i],
            found: t.clone(),
            expected,
            scale: scales[i],
        });
    }
    let warning = rescaled.then(|| {
        format!(
            "UInt16 bands read as reflectance x {UINT16_REFLECTANCE} and rescaled to the model's {expected} range \
             (x 255/{UINT16_REFLECTANCE}); pass --input-scale model or --input-scale <factor> to choose otherwise"
        )
    });
    Ok((scales, warning))
}
