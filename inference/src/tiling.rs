//! The window plan of tiled inference (pure arithmetic, no I/O).
//!
//! Along each axis longer than a tile, the raster is covered by the fewest tiles of
//! `tile` pixels that overlap by `overlap`: `n = ceil((len - overlap) / (tile - overlap))`
//! (model runs are the cost of inference, so no tile is added for context alone). The `n`
//! tiles are spread evenly over the raster extended by a reflected border of up to
//! `overlap / 2` pixels on each side, so that edge pixels see reflected context rather
//! than the model's zero padding. The border is what the `n` tiles leave beyond the raster with neighbours
//! overlapping by at least 3/4 of `overlap` ([`min_overlap`]); on an axis of two or three
//! tiles that may be less than `overlap / 2`, at worst flush with the edge. An axis no longer than a
//! tile gets one tile: the axis plus `overlap / 2` reflected pixels on each side, rounded
//! up to a multiple of 32 (the model's size contract) but no longer than a tile, and
//! centred on the axis. Tile pixels outside the raster are filled by reflection
//! ([`reflect`]).
//!
//! Overlapping predictions are blended with a separable weight `w(i) * w(j)`. Toward a
//! neighbouring tile, `w` is almost zero (1e-6) in a margin of `overlap / 4` pixels at the
//! tile end, where the model's own zero padding disturbs its prediction, then rises as a
//! smoothstep to 1 at `overlap` pixels inside; toward the raster edge, where no neighbour
//! exists, `w` is 1 ([`blend_weights`]). Every weight is positive, every tile end inside
//! the raster lies well inside a neighbour, and dividing the weighted sum by the summed
//! weights gives a seam-free average whatever the layout.
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

/// Tile origins and the tile length along an axis of `len` pixels, for tiles of `tile`
/// pixels overlapping by `overlap` (see the module overview). An axis longer than a tile
/// gets `n = ceil((len - overlap) / (tile - overlap))` tiles, spread evenly from `-b` to
/// `len + b`, where the reflected border `b` is at most `overlap / 2` and at most what `n`
/// tiles overlapping by [`min_overlap`] leave beyond the axis. An axis no longer than a
/// tile gets one tile centred on it.
pub fn axis_tiles(len: usize, tile: usize, overlap: usize) -> (Vec<isize>, usize) {
    let border = overlap / 2;
    if len <= tile {
        let size = round_up(len + 2 * border).min(tile);
        return (vec![-(((size - len) / 2) as isize)], size);
    }
    let n = (len - overlap).div_ceil(tile - overlap);
    let room = n * tile - (n - 1) * min_overlap(overlap) - len;
    let b = border.min(room / 2);
    let span = len + 2 * b - tile;
    let starts = (0..n)
        .map(|k| (k * span / (n - 1)) as isize - b as isize)
        .collect();
    (starts, tile)
}

/// The least overlap of neighbouring tiles: 3/4 of the asked `overlap`, so that a tile's
/// near-zero margin (`overlap / 4`) still lies well inside its neighbour's ramp. Giving up
/// the last quarter buys edge pixels their reflected border without an extra tile.
pub fn min_overlap(overlap: usize) -> usize {
    overlap - overlap / 4
}

/// Weight floor inside the edge margin (keeps every weight positive).
const MARGIN_WEIGHT: f32 = 1e-6;

/// The 1-D blend weights of a tile of length `n` with overlap `overlap`. At an end with a
/// neighbouring tile (`ramp_start`, `ramp_end`): [`MARGIN_WEIGHT`] in the first `overlap /
/// 4` pixels, then a smoothstep up to 1 at `overlap`; at an end on the raster edge: 1.
pub fn blend_weights(n: usize, overlap: usize, ramp_start: bool, ramp_end: bool) -> Vec<f32> {
    let margin = overlap / 4;
    let ramp = |from_end: usize| {
        let s = ((from_end as f32 + 0.5 - margin as f32) / (overlap - margin) as f32).clamp(0.0, 1.0);
        (s * s * (3.0 - 2.0 * s)).max(MARGIN_WEIGHT)
    };
    (0..n)
        .map(|i| {
            if overlap == 0 {
                return 1.0;
            }
            let start = if ramp_start { ramp(i) } else { 1.0 };
            let end = if ramp_end { ramp(n - 1 - i) } else { 1.0 };
            start.min(end)
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
    /// Tile origins along x and y (negative in a reflected border).
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

    /// The tile's blend weights along x and y ([`blend_weights`]) in a `width` x `height`
    /// raster: ramps at the ends inside the raster (a neighbour covers them), 1 at the
    /// ends on or beyond the raster edge.
    pub fn weights(&self, width: usize, height: usize, overlap: usize) -> (Vec<f32>, Vec<f32>) {
        let ends = |start: isize, n: usize, len: usize| (start > 0, start + (n as isize) < len as isize);
        let (x0, x1) = ends(self.x, self.width, width);
        let (y0, y1) = ends(self.y, self.height, height);
        (
            blend_weights(self.width, overlap, x0, x1),
            blend_weights(self.height, overlap, y0, y1),
        )
    }
}

impl TilePlan {
    /// Plans `width` x `height` with tiles of `tile` (rounded up to a multiple of 32) and
    /// `overlap` pixels (at most half a tile).
    pub fn new(width: usize, height: usize, tile: usize, overlap: usize) -> Self {
        let tile = round_up(tile.max(SIZE_MULTIPLE));
        let overlap = overlap.min(tile / 2);
        let (xs, tile_width) = axis_tiles(width, tile, overlap);
        let (ys, tile_height) = axis_tiles(height, tile, overlap);
        Self {
            width,
            height,
            tile,
            overlap,
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

/// Training tile origins along one axis of length `len` ([`training_grid`]).
fn training_origins(len: usize, tile: usize, stride: usize) -> Vec<usize> {
    if len < tile {
        return Vec::new();
    }
    let mut v: Vec<usize> = (0..=len - tile).step_by(stride).collect();
    if v.last() != Some(&(len - tile)) {
        v.push(len - tile);
    }
    v
}

/// The tile windows of training (`risk-train`'s sampling and the generator's statistics)
/// over a `width x height` raster, row-major: no padding, every `stride` pixels, the last
/// tile of each axis flush with the edge; none on an axis shorter than `tile`.
pub fn training_grid(width: usize, height: usize, tile: usize, stride: usize) -> Vec<Window> {
    let xs = training_origins(width, tile, stride);
    training_origins(height, tile, stride)
        .into_iter()
        .flat_map(|y| xs.iter().map(move |&x| Window::new(x, y, tile, tile)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer's tile count along an axis (bench/reference/peer_infer.py `starts`:
    /// origins 0, stride, ... while the tile ends before the axis does).
    fn peer_count(len: usize, tile: usize, overlap: usize) -> usize {
        let mut starts = vec![0];
        while starts.last().unwrap() + tile < len {
            starts.push(starts.last().unwrap() + tile - overlap);
        }
        starts.len()
    }

    #[test]
    fn tile_counts_are_the_peers() {
        // 4096 px, tiles 512 overlapping by 64: 9 per axis, 81 in all (the reflected
        // border of the old plan made it 10 and 100).
        assert_eq!(TilePlan::new(4096, 4096, 512, 64).tile_count(), 81);
        assert_eq!(TilePlan::new(8192, 8192, 512, 64).tile_count(), 19 * 19);
        for (tile, overlap) in [(512, 64), (128, 48), (64, 32), (96, 0), (256, 128)] {
            for len in (tile + 1..4 * tile).step_by(7) {
                let (starts, size) = axis_tiles(len, tile, overlap);
                assert_eq!(size, tile);
                assert_eq!(
                    starts.len(),
                    peer_count(len, tile, overlap),
                    "{len} {tile} {overlap}"
                );
                assert_eq!(starts.len(), (len - overlap).div_ceil(tile - overlap));
            }
        }
    }

    #[test]
    fn tiles_cover_the_axis_overlapping_by_at_least_three_quarters() {
        for (tile, overlap) in [(512, 64), (128, 48), (64, 32), (96, 0)] {
            for len in (1..4 * tile).step_by(5) {
                let (starts, size) = axis_tiles(len, tile, overlap);
                let border = (overlap / 2) as isize;
                let first = starts[0];
                let end = starts.last().unwrap() + size as isize;
                // Whole axis covered, the reflected border at most overlap / 2 each side
                // (a single tile: its rounding to 32 px, centred).
                let spare = (size as isize - len as isize).max(0);
                assert!(
                    first <= 0 && -first <= border.max(spare / 2),
                    "{len} {tile} {overlap}"
                );
                assert!(end >= len as isize && end - len as isize <= border.max(spare));
                assert_eq!(size % SIZE_MULTIPLE, 0);
                for pair in starts.windows(2) {
                    assert!(pair[0] < pair[1] && pair[0] + (size - min_overlap(overlap)) as isize >= pair[1]);
                }
                if len > tile {
                    // Both sides get the same border.
                    assert_eq!(-first, end - len as isize, "{len} {tile} {overlap}");
                }
            }
        }
    }

    #[test]
    fn edge_tiles_get_a_reflected_border_without_an_extra_tile() {
        // 4096 px, tile 512, overlap 64: 9 tiles; at overlap 56 they reach 32 px beyond
        // both edges.
        let (xs, _) = axis_tiles(4096, 512, 64);
        assert_eq!(xs, (0..9).map(|k| -32 + 456 * k).collect::<Vec<_>>());
        // 1000 px: 3 tiles with room to spare, spread evenly over [-32, 1032).
        assert_eq!(axis_tiles(1000, 512, 64), (vec![-32, 244, 520], 512));
        // 960 px: 2 tiles; at overlap 48 they reach 16 px beyond the raster, 8 px a side.
        assert_eq!(axis_tiles(960, 512, 64), (vec![-8, 456], 512));
        // No overlap, no border: tiles from 0 to the far edge.
        assert_eq!(axis_tiles(1000, 512, 0), (vec![0, 488], 512));
    }

    #[test]
    fn small_axes_get_one_centred_tile() {
        // Up to one tile: the axis plus overlap / 2 each side, rounded up to 32, at most a
        // tile, centred.
        assert_eq!(axis_tiles(100, 512, 64), (vec![-46], 192));
        assert_eq!(axis_tiles(448, 512, 64), (vec![-32], 512));
        assert_eq!(axis_tiles(480, 512, 64), (vec![-16], 512));
        assert_eq!(axis_tiles(512, 512, 64), (vec![0], 512));
        let plan = TilePlan::new(33, 5, 512, 64);
        let tiles = plan.row_tiles(0, 0, 33);
        assert_eq!(tiles.len(), 1);
        assert_eq!(
            (tiles[0].x, tiles[0].y, tiles[0].width, tiles[0].height),
            (-47, -45, 128, 96)
        );
        assert_eq!(tiles[0].inside(33, 5), Window::new(0, 0, 33, 5));
    }

    #[test]
    fn weights_skip_the_margin_then_rise_smoothly() {
        // overlap 32: margin 8 px at 1e-6, then smoothstep((i + 0.5 - 8) / 24).
        let w = blend_weights(100, 32, true, true);
        assert!(w.iter().all(|&v| v > 0.0 && v <= 1.0));
        assert_eq!(&w[..8], &[1e-6; 8]);
        assert_eq!(w[8], (0.5f32 / 24.0).powi(2) * (3.0 - 2.0 * 0.5 / 24.0));
        assert!(w[19] < 0.5 && w[20] > 0.5); // s = 0.5 at i = 19.5
        assert_eq!(w[50], 1.0);
        assert_eq!(w[99], 1e-6);
        // Toward the raster edge (no neighbour): 1.
        let left_edge = blend_weights(100, 32, false, true);
        assert_eq!(&left_edge[..50], &[1.0; 50]);
        assert_eq!(&left_edge[50..], &w[50..]);
    }

    #[test]
    fn tiles_ramp_only_toward_their_neighbours() {
        let plan = TilePlan::new(4096, 600, 512, 64);
        let tiles = plan.row_tiles(0, 0, 4096);
        let (first, last) = (tiles[0], tiles[tiles.len() - 1]);
        let (wx, wy) = first.weights(4096, 600, 64);
        assert_eq!((wx[0], wx[511], wy[0], wy[511]), (1.0, 1e-6, 1.0, 1e-6));
        let (wx, _) = last.weights(4096, 600, 64);
        assert_eq!((wx[0], wx[511]), (1e-6, 1.0));
        let (wx, _) = tiles[4].weights(4096, 600, 64);
        assert_eq!((wx[0], wx[256], wx[511]), (1e-6, 1.0, 1e-6));
    }

    #[test]
    fn row_bands_partition_the_height() {
        let plan = TilePlan::new(700, 1000, 512, 64);
        assert_eq!(plan.ys, vec![-32, 244, 520]);
        assert_eq!(plan.row_bands(), vec![(0, 244), (244, 520), (520, 1000)]);
        let plan = TilePlan::new(700, 1000, 512, 0);
        assert_eq!(plan.row_bands(), vec![(0, 488), (488, 1000)]);
    }

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let idx: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(5, 1), 0);
    }
}
