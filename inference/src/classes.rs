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

/// The class map's raster attribute table: one row per class with its value, name and
/// colour (the palette's), so that GIS software shows and styles classes by name.
pub fn attribute_table() -> crate::raster::AttributeTable {
    use crate::raster::{AttributeTable, Column, ColumnType, usage};
    let col = |name: &str, kind, usage| Column {
        name: name.into(),
        kind,
        usage,
    };
    AttributeTable {
        columns: vec![
            col("value", ColumnType::Integer, usage::VALUE),
            col("class", ColumnType::Text, usage::NAME),
            col("red", ColumnType::Integer, usage::RED),
            col("green", ColumnType::Integer, usage::GREEN),
            col("blue", ColumnType::Integer, usage::BLUE),
            col("alpha", ColumnType::Integer, usage::ALPHA),
        ],
        rows: PALETTE
            .iter()
            .filter(|(v, _)| (*v as usize) < NUM_CLASSES)
            .map(|&(v, [r, g, b, a])| {
                let mut row = vec![v.to_string(), CLASS_NAMES[v as usize].to_string()];
                row.extend([r, g, b, a].map(|c| c.to_string()));
                row
            })
            .collect(),
    }
}
