//! The blend: overlapping tile probabilities (and, with several views, their mutual
//! information) summed with the tiles' blending weights ([`crate::tiling`]) into a rolling
//! accumulator of one tile row by one column block, and divided out row band by row band
//! into finished [`RowBand`]s, classes by the run's decision rule.

use super::outputs::RowBand;
use crate::classes::{NODATA, NUM_CLASSES};
use crate::decision::Decision;
use crate::raster::Window;
use crate::tiling::{Tile, TilePlan};

/// Weighted sums of tile probabilities over `tile` rows of one column block, starting at
/// raster row `origin`.
pub(super) struct Accumulator {
    /// Columns covered: the union of the block's tiles (wider than the block itself).
    xa: usize,
    width: usize,
    /// Output columns of the block.
    x0: usize,
    x1: usize,
    rows: usize,
    origin: usize,
    /// `(3, rows, width)` weighted probability sums.
    sums: Vec<f32>,
    /// `(rows, width)` weight sums.
    weights: Vec<f32>,
    /// `(rows, width)` weighted mutual information sums (empty when not wanted).
    mutual_info: Vec<f32>,
    /// Raster size.
    raster: (usize, usize),
    overlap: usize,
}

impl Accumulator {
    pub(super) fn new(plan: &TilePlan, x0: usize, x1: usize, mutual_info: bool) -> Self {
        let tiles = plan.row_tiles(0, x0, x1);
        let inside = |t: &Tile| t.inside(plan.width, plan.height);
        let xa = tiles.first().map_or(x0, |t| inside(t).x);
        let xb = tiles.last().map_or(x1, |t| inside(t).right());
        let rows = plan.tile_height.min(plan.height);
        let width = xb - xa;
        Self {
            xa,
            width,
            x0,
            x1,
            rows,
            origin: 0,
            raster: (plan.width, plan.height),
            sums: vec![0.0; NUM_CLASSES * rows * width],
            weights: vec![0.0; rows * width],
            mutual_info: if mutual_info {
                vec![0.0; rows * width]
            } else {
                Vec::new()
            },
            overlap: plan.overlap,
        }
    }

    /// Adds one tile's `(3, height, width)` probabilities and, when the accumulator keeps
    /// it, its `(height, width)` mutual information (the part inside the raster).
    pub(super) fn add(&mut self, tile: &Tile, probs: &[f32], mutual_info: Option<&[f32]>) {
        let win = tile.inside(self.raster.0, self.raster.1);
        let (weight_x, weight_y) = tile.weights(self.raster.0, self.raster.1, self.overlap);
        let iw = tile.width;
        let plane = tile.height * iw;
        let (dx, dy) = (
            (win.x as isize - tile.x) as usize,
            (win.y as isize - tile.y) as usize,
        );
        for y in 0..win.height {
            let (ty, ay) = (dy + y, win.y + y - self.origin);
            let wy = weight_y[ty];
            let row = ay * self.width + (win.x - self.xa);
            for x in 0..win.width {
                let tx = dx + x;
                let wgt = wy * weight_x[tx];
                self.weights[row + x] += wgt;
                for c in 0..NUM_CLASSES {
                    self.sums[c * self.rows * self.width + row + x] += wgt * probs[c * plane + ty * iw + tx];
                }
                if let (Some(mi), false) = (mutual_info, self.mutual_info.is_empty()) {
                    self.mutual_info[row + x] += wgt * mi[ty * iw + tx];
                }
            }
        }
    }

    /// Divides out the weights of rows `[start, end)` (block columns only) and returns
    /// them as a finished band.
    pub(super) fn finish_rows(
        &self,
        start: usize,
        end: usize,
        valid: Vec<bool>,
        want_probs: bool,
        decision: &Decision,
    ) -> RowBand {
        let (w, h) = (self.x1 - self.x0, end - start);
        let mut classes = vec![0u8; w * h];
        let mut probs = if want_probs {
            vec![0.0f32; NUM_CLASSES * w * h]
        } else {
            Vec::new()
        };
        let keep_mi = !self.mutual_info.is_empty();
        let mut mutual_info = vec![0.0f32; if keep_mi { w * h } else { 0 }];
        let plane = self.rows * self.width;
        for y in 0..h {
            let src_row = (start + y - self.origin) * self.width + (self.x0 - self.xa);
            for x in 0..w {
                let i = y * w + x;
                if !valid[i] {
                    classes[i] = NODATA;
                    continue;
                }
                let s = src_row + x;
                let inv = 1.0 / self.weights[s];
                let p = [0, 1, 2].map(|c| self.sums[c * plane + s] * inv);
                classes[i] = decision.class(&p);
                if want_probs {
                    for c in 0..NUM_CLASSES {
                        probs[c * w * h + i] = p[c];
                    }
                }
                if keep_mi {
                    mutual_info[i] = self.mutual_info[s] * inv;
                }
            }
        }
        RowBand {
            window: Window::new(self.x0, start, w, h),
            classes,
            probs,
            mutual_info,
            valid,
        }
    }

    /// Moves the origin down to raster row `new_origin`, keeping the rows' partial sums.
    pub(super) fn shift_to(&mut self, new_origin: usize) {
        let d = new_origin - self.origin;
        let (rows, width) = (self.rows, self.width);
        let keep = rows.saturating_sub(d);
        for c in 0..NUM_CLASSES {
            let plane = &mut self.sums[c * rows * width..(c + 1) * rows * width];
            plane.copy_within(d.min(rows) * width.., 0);
            plane[keep * width..].fill(0.0);
        }
        for plane in [&mut self.weights, &mut self.mutual_info] {
            if !plane.is_empty() {
                plane.copy_within(d.min(rows) * width.., 0);
                plane[keep * width..].fill(0.0);
            }
        }
        self.origin = new_origin;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_averages_overlapping_tiles_exactly() {
        // 96 px wide, tiles of 64 overlapping by 32: 2 tiles, at overlap 24 they reach 4 px
        // beyond both edges (x = -4, 36); 16 px high: one tile of 64 rows centred on them.
        let plan = TilePlan::new(96, 16, 64, 32);
        assert_eq!((plan.xs.clone(), plan.ys.clone()), (vec![-4, 36], vec![-24]));
        let mut acc = Accumulator::new(&plan, 0, 96, false);
        let tiles = plan.row_tiles(0, 0, 96);
        let n = plan.tile_width * plan.tile_height;
        let constant = |p: [f32; 3]| -> Vec<f32> { p.iter().flat_map(|&v| vec![v; n]).collect() };
        acc.add(&tiles[0], &constant([0.7, 0.2, 0.1]), None);
        acc.add(&tiles[1], &constant([0.1, 0.2, 0.7]), None);
        let band = acc.finish_rows(0, 16, vec![true; 96 * 16], true, &Decision::default());
        let p0 = |x: usize| band.probs[x];
        // Column 50: tile 0 at i = 54, 9 px from its right end (margin 8 px, then a ramp
        // of 24 px: smoothstep((9 + 0.5 - 8) / 24)); tile 1 at i = 14: smoothstep(6.5 / 24).
        let smooth = |s: f32| s * s * (3.0 - 2.0 * s);
        let (wa, wb) = (smooth(1.5 / 24.0), smooth(6.5 / 24.0));
        let expect = (wa * 0.7 + wb * 0.1) / (wa + wb);
        assert!((p0(50) - expect).abs() < 1e-6, "{} vs {expect}", p0(50));
        // Columns 0..36 are covered by tile 0 only, 60..96 by tile 1 only.
        assert!((p0(0) - 0.7).abs() < 1e-6);
        assert!((p0(35) - 0.7).abs() < 1e-6);
        assert!((p0(95) - 0.1).abs() < 1e-6);
        assert_eq!(band.classes[0], 0);
        assert_eq!(band.classes[95], 2);
    }
}
