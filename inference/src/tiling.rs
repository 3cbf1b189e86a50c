//! The window plan of tiled inference (pure arithmetic, no I/O).
//!
//! The raster is extended by a reflected border of `overlap / 2` pixels on every side,
//! and this extended extent is covered by model tiles of `tile` x `tile` pixels on a grid
//! of stride `tile - overlap`; the last tile of a row or column is shifted back to end at
//! the extended edge. So pixels at the raster edge see reflected context, as interior
//! pixels see real context, rather than the model's zero padding; when the extended
//! raster is smaller than a tile, the single tile is the extended extent rounded up to a
//! multiple of 32 (the model's size contract). Tile pixels outside the raster are filled
//! by reflection ([`reflect`]).
//!
//! Overlapping predictions are blended with a separable weight `w(i) * w(j)`: `w` is
//! almost zero (1e-6) in a margin of `overlap / 4` pixels at each tile edge, where the
//! model's own zero padding disturbs its prediction, then rises as a smoothstep to 1 at
//! `overlap` pixels inside. Every weight is positive, every pixel in one tile's margin
//! lies well inside a neighbour (or is in the reflected border), and dividing the
//! weighted sum by the summed weights gives a seam-free average whatever the layout.
//!
//! Rasters are processed in row bands ([`TilePlan::row_bands`]): tile row `k` covers rows
//! `[y_k, y_k + tile)`; once it is done, rows above `y_{k+1}` receive no more
//! contributions and can be written. A rolling accumulator of `tile` rows by the block
//! width is therefore enough, whatever the height. Wide rasters are cut into column
//! blocks ([`TilePlan::column_blocks`]) sized from the memory budget; tiles straddling
//! two blocks are run for both, which keeps results identical to one block.

use crate::raster::Window;

/// Model input sides must be multiples of this.
pub const SIZE_MULTIPLE: usize = 32;

/// Rounds `n` up to a multiple of [`SIZE_MULTIPLE`].
pub fn round_up(n: usize) -> usize {
    n.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE
}

/// Tile origins and the tile length along an axis of `len` pixels extended by `border`
/// on both sides: origins `-border, -border + stride, ...`, the last one shifted back to
/// end at `len + border`. When the extended axis fits in one tile, the single tile is
/// the extended axis rounded up to a multiple of 32.
pub fn axis_tiles(len: usize, tile: usize, stride: usize, border: usize) -> (Vec<isize>, usize) {
    let ext = len + 2 * border;
    let b = border as isize;
    if ext <= tile {
        return (vec![-b], round_up(ext));
    }
    let mut starts: Vec<isize> = (0..)
        .map(|k| k * stride)
        .take_while(|&s| s + tile < ext)
        .map(|s| s as isize - b)
        .collect();
    starts.push((ext - tile) as isize - b);
    starts.dedup();
    (starts, tile)
}

/// Weight floor inside the edge margin (keeps every weight positive).
const MARGIN_WEIGHT: f32 = 1e-6;

/// The 1-D blend weights of a tile of length `n` with overlap `overlap`: [`MARGIN_WEIGHT`]
/// in the first and last `overlap / 4` pixels, then a smoothstep up to 1 at `overlap`.
pub fn blend_weights(n: usize, overlap: usize) -> Vec<f32> {
    let margin = overlap / 4;
    (0..n)
        .map(|i| {
            if overlap == 0 {
                return 1.0;
            }
            let from_edge = i.min(n - 1 - i) as f32 + 0.5 - margin as f32;
            let s = (from_edge / (overlap - margin) as f32).clamp(0.0, 1.0);
            (s * s * (3.0 - 2.0 * s)).max(MARGIN_WEIGHT)
        })
        .collect()
}

/// Tile layout of one raster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TilePlan {
    pub width: usize,
    pub height: usize,
    /// Nominal tile side (a multiple of 32).
    pub tile: usize,
    pub overlap: usize,
    /// Reflected border added on every side (`overlap / 2`).
    pub border: usize,
    /// Tile origins along x and y (negative in the border).
    pub xs: Vec<isize>,
    pub ys: Vec<isize>,
    /// Model input width and height of every tile (multiples of 32).
    pub tile_width: usize,
    pub tile_height: usize,
}

/// One model tile: its top-left corner in raster coordinates (negative in the reflected
/// border) and its size, which is the model input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub x: isize,
    pub y: isize,
    pub width: usize,
    pub height: usize,
}

fn clip(start: isize, len: usize, limit: usize) -> (usize, usize) {
    let a = start.max(0) as usize;
    let b = ((start + len as isize).max(0) as usize).min(limit);
    (a.min(b), b)
}

impl Tile {
    /// The part of the tile inside a `width` x `height` raster.
    pub fn inside(&self, width: usize, height: usize) -> Window {
        let (x0, x1) = clip(self.x, self.width, width);
        let (y0, y1) = clip(self.y, self.height, height);
        Window::new(x0, y0, x1 - x0, y1 - y0)
    }
}

impl TilePlan {
    /// Plans `width` x `height` with tiles of `tile` (rounded up to a multiple of 32) and
    /// `overlap` pixels (at most half a tile).
    pub fn new(width: usize, height: usize, tile: usize, overlap: usize) -> Self {
        let tile = round_up(tile.max(SIZE_MULTIPLE));
        let overlap = overlap.min(tile / 2);
        let stride = tile - overlap;
        let border = overlap / 2;
        let (xs, tile_width) = axis_tiles(width, tile, stride, border);
        let (ys, tile_height) = axis_tiles(height, tile, stride, border);
        Self {
            width,
            height,
            tile,
            overlap,
            border,
            xs,
            ys,
            tile_width,
            tile_height,
        }
    }

    pub fn tile_count(&self) -> usize {
        self.xs.len() * self.ys.len()
    }

    /// The tiles of tile row `row` whose inside parts intersect columns `[x0, x1)`.
    pub fn row_tiles(&self, row: usize, x0: usize, x1: usize) -> Vec<Tile> {
        let y = self.ys[row];
        self.xs
            .iter()
            .map(|&x| Tile {
                x,
                y,
                width: self.tile_width,
                height: self.tile_height,
            })
            .filter(|t| {
                let w = t.inside(self.width, self.height);
                w.x < x1 && w.right() > x0
            })
            .collect()
    }

    /// For each tile row `k`: the raster rows `[start, end)` that become final once tile
    /// rows `0..=k` are done (they get no contribution from later tile rows).
    pub fn row_bands(&self) -> Vec<(usize, usize)> {
        let n = self.ys.len();
        (0..n)
            .map(|k| {
                let start = if k == 0 { 0 } else { self.ys[k].max(0) as usize };
                let end = if k + 1 < n {
                    (self.ys[k + 1].max(0) as usize).min(self.height)
                } else {
                    self.height
                };
                (start, end)
            })
            .collect()
    }

    /// First raster row covered by tile row `k`.
    pub fn row_origin(&self, k: usize) -> usize {
        self.ys[k].max(0) as usize
    }

    /// Column blocks `[x0, x1)` covering the width, each at most `max_width` wide (at
    /// least one tile).
    pub fn column_blocks(&self, max_width: usize) -> Vec<(usize, usize)> {
        let max_width = max_width.max(self.tile);
        let mut blocks = Vec::new();
        let mut x0 = 0;
        while x0 < self.width {
            let x1 = (x0 + max_width).min(self.width);
            blocks.push((x0, x1));
            x0 = x1;
        }
        blocks
    }
}

/// Mirror index for reflect padding (`-1 -> 1`, `n -> n - 2`), as numpy's `reflect`.
pub fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_extended_axis_and_end_at_its_edge() {
        // 1000 px + 32 px border each side, tiles 512, stride 448.
        assert_eq!(axis_tiles(1000, 512, 448, 32), (vec![-32, 416, 520], 512));
        assert_eq!(axis_tiles(448, 512, 448, 32), (vec![-32], 512));
        assert_eq!(axis_tiles(100, 512, 448, 32), (vec![-32], 192));
        assert_eq!(axis_tiles(1000, 512, 512, 0), (vec![0, 488], 512));
    }

    #[test]
    fn weights_skip_the_margin_then_rise_smoothly() {
        // overlap 32: margin 8 px at 1e-6, then smoothstep((i + 0.5 - 8) / 24).
        let w = blend_weights(100, 32);
        assert!(w.iter().all(|&v| v > 0.0 && v <= 1.0));
        assert_eq!(&w[..8], &[1e-6; 8]);
        assert_eq!(w[8], (0.5f32 / 24.0).powi(2) * (3.0 - 2.0 * 0.5 / 24.0));
        assert!(w[19] < 0.5 && w[20] > 0.5); // s = 0.5 at i = 19.5
        assert_eq!(w[50], 1.0);
        assert_eq!(w[99], 1e-6);
    }

    #[test]
    fn row_bands_partition_the_height() {
        let plan = TilePlan::new(700, 1000, 512, 64);
        assert_eq!(plan.ys, vec![-32, 416, 520]);
        assert_eq!(plan.row_bands(), vec![(0, 416), (416, 520), (520, 1000)]);
        let plan = TilePlan::new(700, 1000, 512, 0);
        assert_eq!(plan.row_bands(), vec![(0, 488), (488, 1000)]);
    }

    #[test]
    fn small_rasters_get_one_padded_tile() {
        let plan = TilePlan::new(33, 5, 512, 64);
        let tiles = plan.row_tiles(0, 0, 33);
        assert_eq!(tiles.len(), 1);
        assert_eq!(
            (tiles[0].x, tiles[0].y, tiles[0].width, tiles[0].height),
            (-32, -32, 128, 96)
        );
        assert_eq!(tiles[0].inside(33, 5), Window::new(0, 0, 33, 5));
    }

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let idx: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(5, 1), 0);
    }
}
