//! Spatial-block train / validation / test split: the raster is cut into square blocks of
//! `block_tiles x block_tiles` tile strides, whole blocks are dealt to the splits (a
//! seeded shuffle, then the first `val_fraction` of the blocks to validation, the next
//! `test_fraction` to test, the rest to training), and each tile goes to the split of the
//! block holding its top-left pixel. A tile that also reaches into a block of another split
//! (possible with overlapping tiles or edge tiles moved back) is left out, so that no pixel
//! is seen by two splits.

use risk_inference::raster::Window;

use super::numpy_rng::RandomState;

/// Which split a tile belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

/// Tile indices per split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitTiles {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    /// Tiles left out because they straddle blocks of different splits.
    pub dropped: Vec<usize>,
}

/// Splits `tiles` (windows of one raster) by spatial blocks of side `block` pixels.
pub fn split(tiles: &[Window], block: usize, val_fraction: f64, test_fraction: f64, seed: u32) -> SplitTiles {
    let block = block.max(1);
    let cols = tiles.iter().map(|w| w.right().div_ceil(block)).max().unwrap_or(0);
    let rows = tiles
        .iter()
        .map(|w| w.bottom().div_ceil(block))
        .max()
        .unwrap_or(0);
    let n = cols * rows;
    // Fisher-Yates with numpy's RandomState, so the split is reproducible from the seed.
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = RandomState::new(seed);
    for i in (1..n).rev() {
        let j = rng.randint(i as u64 + 1, 1)[0] as usize;
        order.swap(i, j);
    }
    let n_val = (val_fraction * n as f64).round() as usize;
    let n_test = (test_fraction * n as f64).round() as usize;
    let mut of_block = vec![Split::Train; n];
    for (rank, &b) in order.iter().enumerate() {
        of_block[b] = if rank < n_val {
            Split::Val
        } else if rank < n_val + n_test {
            Split::Test
        } else {
            Split::Train
        };
    }
    let mut out = SplitTiles::default();
    for (i, w) in tiles.iter().enumerate() {
        let home = of_block[(w.y / block) * cols + w.x / block];
        let straddles = (w.y / block..=(w.bottom() - 1) / block)
            .flat_map(|by| (w.x / block..=(w.right() - 1) / block).map(move |bx| by * cols + bx))
            .any(|b| of_block[b] != home);
        match (straddles, home) {
            (true, _) => out.dropped.push(i),
            (false, Split::Train) => out.train.push(i),
            (false, Split::Val) => out.val.push(i),
            (false, Split::Test) => out.test.push(i),
        }
    }
    out
}
