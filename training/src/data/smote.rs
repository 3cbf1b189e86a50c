//! SMOTE (Chawla et al. 2002) exactly as imbalanced-learn's `SMOTE(k_neighbors=k,
//! random_state=seed)` draws its samples for one minority class:
//!
//! 1. the k nearest neighbours of every minority sample among the minority samples
//!    (Euclidean, itself excluded; ties broken by index),
//! 2. `randint(0, n * k, size)` picks (sample, neighbour) pairs, then
//!    `uniform(0, 1, size)` the steps, both from numpy's `RandomState(seed)`,
//! 3. `new = x + step * (neighbour - x)`: the difference in the input precision (f32), the
//!    rest in f64, rounded to f32 (numpy's promotion in `_generate_samples`).
//!
//! [`plan`] returns the recipe of each synthetic sample ([`Synthetic`]: parents and step)
//! rather than the vectors, so that tiles can be synthesised when a batch needs them;
//! [`Synthetic::apply`] makes the vector. Checked against imbalanced-learn 0.14 in
//! `tests/sampling.rs`.

use super::numpy_rng::RandomState;

/// One synthetic sample: `x[sample] + step * (x[neighbour] - x[sample])`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Synthetic {
    /// Index of the base sample among the minority samples.
    pub sample: usize,
    /// Index of the neighbour among the minority samples.
    pub neighbour: usize,
    /// Interpolation step in [0, 1).
    pub step: f64,
}

impl Synthetic {
    /// The parent the synthetic sample is nearer to (the base sample when `step <= 0.5`):
    /// its label map is the synthetic tile's label map.
    pub fn nearer_parent(&self) -> usize {
        if self.step <= 0.5 {
            self.sample
        } else {
            self.neighbour
        }
    }

    /// The synthetic vector from its two parents' vectors.
    pub fn apply(&self, sample: &[f32], neighbour: &[f32]) -> Vec<f32> {
        sample
            .iter()
            .zip(neighbour)
            .map(|(&x, &nb)| {
                let diff = nb - x; // f32, as numpy subtracts float32 arrays
                (x as f64 + self.step * diff as f64) as f32
            })
            .collect()
    }
}

/// The k nearest neighbours of every row of `x` among the rows (itself excluded), nearest
/// first. `k` must be below the number of rows.
pub fn nearest_neighbours(x: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    let n = x.len();
    let mut d2 = vec![vec![0.0f64; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            let d: f64 = x[i]
                .iter()
                .zip(&x[j])
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum();
            d2[i][j] = d;
            d2[j][i] = d;
        }
    }
    (0..n)
        .map(|i| {
            let mut order: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            order.sort_by(|&a, &b| d2[i][a].total_cmp(&d2[i][b]).then(a.cmp(&b)));
            order.truncate(k);
            order
        })
        .collect()
}

/// Draws `n_new` synthetic samples from the neighbour table `nns` (one row of k indices per
/// minority sample) with numpy's `RandomState(seed)`, in imbalanced-learn's order.
pub fn plan(nns: &[Vec<usize>], n_new: usize, seed: u32) -> Vec<Synthetic> {
    let k = nns.first().map_or(0, Vec::len);
    if n_new == 0 || k == 0 {
        return Vec::new();
    }
    let mut rng = RandomState::new(seed);
    let picks = rng.randint((nns.len() * k) as u64, n_new);
    let steps = rng.uniform(n_new);
    picks
        .iter()
        .zip(steps)
        .map(|(&p, step)| {
            let (row, col) = (p as usize / k, p as usize % k);
            Synthetic {
                sample: row,
                neighbour: nns[row][col],
                step,
            }
        })
        .collect()
}
