//! The memory model of a run: how `--memory-budget` bounds each stage's buffers, in one
//! place, so that the budget's shares can be read (and changed) together.
//!
//! - GDAL's block cache: [`GDAL_CACHE_SHARE`] of the budget ([`gdal_cache`]).
//! - The model pass's blending: a rolling accumulator of one tile row by one column
//!   block, plus the finished row bands on their way to the writer. Its cost per column
//!   of the block is [`bytes_per_column`]; the block is as wide as the budget pays for
//!   ([`block_width`]), never narrower than a tile nor wider than the largest block.
//! - The batches of tiles (`--batch auto`): at most [`BATCH_SHARE`] of the budget
//!   ([`batch_ceiling`], with [`crate::autobatch::bytes_per_tile`] per tile).
//! - The CRF pass: [`CRF_BYTES_PER_PIXEL`] per pixel of a CRF tile, halo included, which
//!   sets the CRF tile side ([`crf_tile_side`]).
//!
//! The stages run one after the other for one raster (the CRF pass after the model
//! pass), so each may use most of the budget.

/// GDAL's block cache gets `1 / GDAL_CACHE_SHARE` of the budget (the rest: tiles,
/// accumulators, the CRF).
pub const GDAL_CACHE_SHARE: usize = 8;

/// `--batch auto` probes batches up to `1 / BATCH_SHARE` of the budget.
pub const BATCH_SHARE: usize = 4;

/// Accumulator bytes per pixel: three weighted probability sums and the weight sum, each
/// a float32.
const ACCUMULATOR_BYTES: usize = 4 * 4;

/// Bytes per pixel of one finished row band: the class (u8), three probabilities
/// (float32) and the data mask (bool).
const FINISHED_BAND_BYTES: usize = 1 + 3 * 4 + 1;

/// Finished row bands alive at once: the one being finished and two queued for the
/// writer (the channel's capacity).
const FINISHED_BANDS: usize = 3;

/// Extra bytes per pixel with the mutual information of several views: its weighted sum
/// in the accumulator, and one float32 per finished band.
const MUTUAL_INFO_BYTES: usize = 4 + FINISHED_BANDS * 4;

/// Peak memory of the CRF per CRF tile pixel, whole process (measured with `risk-crf`;
/// see the `crf` module's overview).
pub const CRF_BYTES_PER_PIXEL: usize = 170;

/// GDAL's block cache for a budget.
pub fn gdal_cache(memory_budget: usize) -> usize {
    memory_budget / GDAL_CACHE_SHARE
}

/// Bytes per column of a column block: `rows` accumulator rows (a tile row, or the
/// raster's height when shorter) of the accumulator and of the finished bands.
pub fn bytes_per_column(rows: usize, mutual_info: bool) -> usize {
    let mi = if mutual_info { MUTUAL_INFO_BYTES } else { 0 };
    rows * (ACCUMULATOR_BYTES + FINISHED_BANDS * FINISHED_BAND_BYTES + mi)
}

/// The column block width a budget pays for at `per_column` bytes, between one `tile`
/// and `max_width` (which is raised to a tile when smaller).
pub fn block_width(memory_budget: usize, per_column: usize, tile: usize, max_width: usize) -> usize {
    (memory_budget / per_column.max(1)).clamp(tile, max_width.max(tile))
}

/// Most tiles per batch that `--batch auto` may try at `per_tile` bytes each.
pub fn batch_ceiling(memory_budget: usize, per_tile: usize) -> usize {
    memory_budget / BATCH_SHARE / per_tile.max(1)
}

/// The CRF tile side for a memory budget: the requested side, shrunk to what the budget
/// holds but never below twice the halo plus 64 px of core. A requested side is never
/// enlarged (one too small for its halo is refused by [`crate::crf::tile_plan`]).
pub fn crf_tile_side(requested: usize, halo: usize, memory_budget: usize) -> usize {
    let fits = ((memory_budget / CRF_BYTES_PER_PIXEL) as f64).sqrt() as usize;
    requested.min(fits.max(2 * halo + 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crf_tile_shrinks_to_the_budget() {
        assert_eq!(crf_tile_side(8192, 256, 64 << 30), 8192);
        // 2 GiB / 170 B = 12.6 Mpx -> 3554 px a side.
        assert_eq!(crf_tile_side(8192, 256, 2 << 30), 3554);
        assert_eq!(crf_tile_side(1000, 256, 2 << 30), 1000);
        // Never below twice the halo plus 64 px of core.
        assert_eq!(crf_tile_side(8192, 256, 1 << 20), 576);
        // A requested side is not enlarged.
        assert_eq!(crf_tile_side(100, 256, 2 << 30), 100);
    }

    #[test]
    fn blending_costs_58_bytes_per_pixel_of_a_tile_row() {
        // 16 accumulator bytes + 3 finished bands x 14 bytes; 16 more with the mutual
        // information (4 in the accumulator, 4 per finished band).
        assert_eq!(bytes_per_column(512, false), 512 * 58);
        assert_eq!(bytes_per_column(512, true), 512 * 74);
        // 2 GiB over 512 rows at 58 bytes: 72 315 columns, capped at the largest block;
        // a budget too small for one tile still gets one tile.
        assert_eq!(
            block_width(2 << 30, bytes_per_column(512, false), 512, 8192),
            8192
        );
        assert_eq!(block_width(1 << 20, bytes_per_column(512, false), 512, 8192), 512);
        assert_eq!(
            block_width(64 << 20, bytes_per_column(512, false), 512, 8192),
            2259
        );
    }
}
