//! Minority sampling of `docs/spec.md` ("Training"), as a plan over training tiles:
//!
//! 1. Class-1-rich tiles are those with at least `rich_threshold` (30%) of their labelled
//!    pixels in class 1 (Medium).
//! 2. Duplication: copies of the rich tiles, round robin in tile order, are added one at a
//!    time until class 1 is at least `duplicate_target` (5%) of the labelled pixels.
//! 3. SMOTE ([`super::smote`], k = 5, seed 42) on the flattened rich tiles (each
//!    `(C * H * W)` values; the originals, not the copies, so that a copy is never its own
//!    neighbour) adds `n` synthetic tiles, `n` solving
//!    `(C1 + n c) / (L + n l) = smote_target` (7.5%) with `c`, `l` the mean class-1 and
//!    labelled pixels of a rich tile. A synthetic tile's label map is its nearer parent's.
//! 4. Fewer than k + 1 rich tiles: k drops to (rich tiles - 1) with a warning; fewer than 2:
//!    no SMOTE, with a warning.
//!
//! The plan holds indices and interpolation steps, not pixels: tiles are read (and
//! synthetic ones interpolated) when a batch needs them.

use super::smote::{self, Synthetic};
use crate::synth::ClassCounts;

/// Minority-sampling parameters (the `sampling:` section of `config.yaml`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Share of class-1 pixels (of the labelled pixels) that makes a tile class-1-rich.
    /// Default 0.30.
    pub rich_threshold: f64,
    /// Class-1 share that duplication reaches. Default 0.05.
    pub duplicate_target: f64,
    /// Class-1 share that SMOTE reaches. Default 0.075.
    pub smote_target: f64,
    /// SMOTE neighbours. Default 5.
    pub k: usize,
    /// Seed of SMOTE's numpy `RandomState`. Default 42.
    pub seed: u32,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            rich_threshold: 0.30,
            duplicate_target: 0.05,
            smote_target: 0.075,
            k: 5,
            seed: 42,
        }
    }
}

/// One training sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sample {
    /// A training tile (original or duplicate), by index.
    Tile(usize),
    /// `tile[a] + step * (tile[b] - tile[a])`, labels of `label_from`; indices of tiles.
    Synthetic {
        a: usize,
        b: usize,
        step: f64,
        label_from: usize,
    },
}

/// The epoch's sample list and what it took to build it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplingPlan {
    pub samples: Vec<Sample>,
    /// Indices of the class-1-rich tiles.
    pub rich: Vec<usize>,
    pub duplicates: usize,
    pub synthetic: usize,
    /// The k SMOTE used (0 when it did not run).
    pub k_used: usize,
    /// Class-1 share of the labelled pixels: originals, after duplication, after SMOTE.
    pub share: [f64; 3],
    pub warnings: Vec<String>,
}

fn labelled(c: &ClassCounts) -> u64 {
    c.low + c.medium + c.high
}

fn share(medium: u64, labelled: u64) -> f64 {
    medium as f64 / labelled.max(1) as f64
}

/// Builds the plan from per-tile class counts; `load(i)` returns tile `i` flattened
/// `(C * H * W)` (called once per rich tile, only when SMOTE runs).
pub fn plan<E>(
    counts: &[ClassCounts],
    cfg: &SamplingConfig,
    mut load: impl FnMut(usize) -> Result<Vec<f32>, E>,
) -> Result<SamplingPlan, E> {
    let mut p = SamplingPlan {
        samples: (0..counts.len()).map(Sample::Tile).collect(),
        ..Default::default()
    };
    let (mut medium, mut total): (u64, u64) = counts
        .iter()
        .fold((0, 0), |(m, t), c| (m + c.medium, t + labelled(c)));
    p.share[0] = share(medium, total);
    p.rich = (0..counts.len())
        .filter(|&i| {
            labelled(&counts[i]) > 0 && share(counts[i].medium, labelled(&counts[i])) >= cfg.rich_threshold
        })
        .collect();
    if p.rich.is_empty() {
        p.warnings.push(format!(
            "no class-1-rich tiles (>= {:.0}% class 1): no duplication, no SMOTE",
            100.0 * cfg.rich_threshold
        ));
        p.share = [p.share[0]; 3];
        return Ok(p);
    }
    // 2. duplication, round robin over the rich tiles
    let mut next = 0;
    while share(medium, total) < cfg.duplicate_target {
        let t = p.rich[next % p.rich.len()];
        p.samples.push(Sample::Tile(t));
        medium += counts[t].medium;
        total += labelled(&counts[t]);
        p.duplicates += 1;
        next += 1;
    }
    p.share[1] = share(medium, total);
    // 3. SMOTE
    let k = cfg.k.min(p.rich.len().saturating_sub(1));
    if k < cfg.k {
        p.warnings.push(format!(
            "only {} class-1-rich tiles: SMOTE k reduced from {} to {k}",
            p.rich.len(),
            cfg.k
        ));
    }
    let n = p.rich.len() as f64;
    let c_mean = p.rich.iter().map(|&i| counts[i].medium as f64).sum::<f64>() / n;
    let l_mean = p.rich.iter().map(|&i| labelled(&counts[i]) as f64).sum::<f64>() / n;
    let needed = cfg.smote_target * total as f64 - medium as f64;
    let per_tile = c_mean - cfg.smote_target * l_mean;
    if k == 0 || needed <= 0.0 || per_tile <= 0.0 {
        p.share[2] = p.share[1];
        return Ok(p);
    }
    let n_new = (needed / per_tile).ceil() as usize;
    let features = p.rich.iter().map(|&i| load(i)).collect::<Result<Vec<_>, E>>()?;
    let nns = smote::nearest_neighbours(&features, k);
    for s in smote::plan(&nns, n_new, cfg.seed) {
        let Synthetic {
            sample,
            neighbour,
            step,
        } = s;
        let label_from = p.rich[s.nearer_parent()];
        p.samples.push(Sample::Synthetic {
            a: p.rich[sample],
            b: p.rich[neighbour],
            step,
            label_from,
        });
        medium += counts[label_from].medium;
        total += labelled(&counts[label_from]);
    }
    p.synthetic = n_new;
    p.k_used = k;
    p.share[2] = share(medium, total);
    Ok(p)
}
