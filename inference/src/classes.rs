//! The ordinal risk classes every raster of the project uses: values, names, nodata and
//! the palette of class maps (green Low, amber Medium, red High).

/// Number of risk classes.
pub const NUM_CLASSES: usize = 3;

/// Class-map value of pixels without data.
pub const NODATA: u8 = 255;

/// Class names by value.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = ["Low", "Medium", "High"];

/// RGBA colour of each class-map value, for GeoTIFF colour tables and quicklooks.
pub const PALETTE: [(u8, [u8; 4]); 4] = [
    (0, [46, 160, 67, 255]),
    (1, [245, 166, 35, 255]),
    (2, [214, 39, 40, 255]),
    (NODATA, [0, 0, 0, 0]),
];
