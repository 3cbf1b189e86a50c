//! The errors of the CRF's public API, each naming the offending parameter, input or pixel.

/// Errors of the CRF API; each names the offending input.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum CrfError {
    #[error("unknown CRF preset '{0}': expected 'default' or 'enhanced'")]
    UnknownPreset(String),
    #[error("{text:?} is not potts, ordinal or 9 comma-separated numbers")]
    CompatNotParsed { text: String },
    #[error("{text:?}: a compatibility matrix is 9 finite numbers (3x3, row by row), got {got}")]
    CompatMatrix { text: String, got: usize },
    #[error("CRF parameter {name} = {value} is invalid: {reason}")]
    BadParam {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    #[error("{what} has {got} values, expected {expected} for a {width}x{height} image")]
    Shape {
        what: &'static str,
        got: usize,
        expected: usize,
        width: usize,
        height: usize,
    },
    #[error("{what} is not finite at pixel (x {x}, y {y}), class {class}: {value}")]
    NotFinite {
        what: &'static str,
        x: usize,
        y: usize,
        class: usize,
        value: f32,
    },
    #[error(
        "image of {width}x{height} pixels is too large for one CRF run (at most 2^31 / 6 pixels): use dense_crf_tiled"
    )]
    TooLarge { width: usize, height: usize },
}
