//! What the pipeline's model pass calls to turn a batch of tiles into class
//! probabilities: one model, or the mean over several *views* of the batch — ensemble
//! members x test-time transforms x scales — with the uncertainty that their disagreement
//! measures.
//!
//! For a batch `x` of `n` normalised tiles `(n, C, h, w)`:
//!
//! ```text
//! for each scale s:      x_s = resize_bilinear(x, scaled_side(h, s), scaled_side(w, s))
//!   for each transform t:  x_st = t(x_s)                       (flips, rotations: augment)
//!     for each member m:     p = resize_bilinear(t⁻¹(m(x_st)), h, w)   (n, 3, h, w)
//!                            sum += p;  entropy_sum += H(p)
//! probs = sum / V            (V = members x transforms x scales)
//! mutual information = (H(probs) - entropy_sum / V) / ln 3
//! ```
//!
//! The average is taken per tile, before blending, so the pipeline's accumulator, its
//! memory bound and its seam-free blend are those of a single model. The views' buffers
//! here are a few batch-sized arrays, allocated once and reused, outside the pipeline's
//! `--memory-budget`: about 55 MB for TTA at tile 512 and batch 4, 110 MB with a 1.25
//! scale. A plain run (one member, no TTA, scale 1) is a direct `Model::run`.
//!
//! Cost: `V` model runs per batch (a scale `s` costs about `s^2` of a run at scale 1),
//! plus the transforms, resampling and entropies, which are small beside a model.
//!
//! # Uncertainty
//!
//! - Normalised predictive entropy `H(p) / ln 3` of the blended mean probabilities
//!   ([`normalised_entropy`]): 0 for a one-hot prediction, 1 for a uniform one; the total
//!   uncertainty.
//! - Mutual information between the prediction and the view, `H(mean p) - mean H(p)`,
//!   normalised by `ln 3` ([`mutual_information`]): the epistemic part, 0 when every
//!   view agrees, 1 when the views are one-hot on three different classes equally often.
//!   It is computed per tile, where the views are, and the pipeline blends it like the
//!   probabilities (blending mean member entropies instead and subtracting after the
//!   blend would count the overlap of two tiles as disagreement, and draw the tile grid
//!   into the map).
//!
//! # Ensemble contract
//!
//! Members are averaged pixel by pixel, so they must read the same input: the same
//! channel count, bands, scale, mean and std, and the same tile size and overlap. A
//! member that differs is refused with an error naming its file and the field.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crate::augment::{Transform, Tta, resize_bilinear, scaled_side};
use crate::classes::NUM_CLASSES;
use crate::session::{Model, ModelError, ModelInfo, Result};

/// Normalised Shannon entropy: `H(p) / ln 3`, clamped to `[0, 1]`.
pub fn normalised_entropy(p: [f32; NUM_CLASSES]) -> f32 {
    (entropy(p) / max_entropy()).clamp(0.0, 1.0)
}

/// Normalised mutual information of a set of views of one pixel:
/// `(H(mean p) - mean H(p)) / ln 3`, clamped to `[0, 1]`.
pub fn mutual_information(views: &[[f32; NUM_CLASSES]]) -> f32 {
    let v = views.len() as f32;
    let mut mean = [0.0f32; NUM_CLASSES];
    let mut mean_entropy = 0.0;
    for p in views {
        for c in 0..NUM_CLASSES {
            mean[c] += p[c];
        }
        mean_entropy += entropy(*p);
    }
    information_gap(mean.map(|s| s / v), mean_entropy / v)
}

/// `(H(mean) - mean_entropy) / ln 3`, clamped to `[0, 1]`.
fn information_gap(mean: [f32; NUM_CLASSES], mean_entropy: f32) -> f32 {
    ((entropy(mean) - mean_entropy) / max_entropy()).clamp(0.0, 1.0)
}

/// `ln 3`, the entropy of the uniform distribution over the classes.
fn max_entropy() -> f32 {
    (NUM_CLASSES as f32).ln()
}

/// Shannon entropy in nats (0 ln 0 = 0).
fn entropy(p: [f32; NUM_CLASSES]) -> f32 {
    p.iter().filter(|&&v| v > 0.0).map(|&v| -v * v.ln()).sum()
}

/// One or more models and the views each tile is seen under.
pub struct Predictor {
    members: Vec<Model>,
    transforms: Vec<Transform>,
    scales: Vec<f32>,
    // Reused batch buffers.
    scaled: Vec<f32>,
    view_in: Vec<f32>,
    view_out: Vec<f32>,
    upright: Vec<f32>,
    native: Vec<f32>,
    sum: Vec<f32>,
    entropy_sum: Vec<f32>,
    /// `--batch auto` answers per tile shape `(h, w)` ([`Predictor::auto_batch`]).
    auto_batches: HashMap<(usize, usize), usize>,
}

impl From<Model> for Predictor {
    /// A plain predictor: one model, no augmentation.
    fn from(model: Model) -> Self {
        Self::new(vec![model], Tta::None, vec![1.0]).expect("one model always agrees with itself")
    }
}

impl Predictor {
    /// Members (at least one) seen under `tta` at every scale in `scales` (positive; 1
    /// is the native grid). Fails when a member's input contract differs from the first's.
    pub fn new(members: Vec<Model>, tta: Tta, scales: Vec<f32>) -> Result<Self> {
        assert!(!members.is_empty(), "a predictor needs a model");
        assert!(
            !scales.is_empty() && scales.iter().all(|s| s.is_finite() && *s > 0.0),
            "scales must be positive: {scales:?}"
        );
        let first = &members[0];
        for m in &members[1..] {
            if let Some(msg) = contract_difference(first.info(), m.info()) {
                return Err(ModelError::Mismatch {
                    path: m.path().to_path_buf(),
                    first: first.path().to_path_buf(),
                    msg,
                });
            }
        }
        Ok(Self {
            members,
            transforms: tta.transforms(),
            scales,
            scaled: Vec::new(),
            view_in: Vec::new(),
            view_out: Vec::new(),
            upright: Vec::new(),
            native: Vec::new(),
            sum: Vec::new(),
            entropy_sum: Vec::new(),
            auto_batches: HashMap::new(),
        })
    }

    /// The first member's metadata (the members share the input contract).
    pub fn info(&self) -> &ModelInfo {
        self.members[0].info()
    }

    /// The first member's file.
    pub fn path(&self) -> &Path {
        self.members[0].path()
    }

    /// The execution provider of the first member.
    pub fn provider(&self) -> &'static str {
        self.members[0].provider()
    }

    pub fn members(&self) -> &[Model] {
        &self.members
    }

    /// Model runs per batch: members x transforms x scales.
    pub fn views(&self) -> usize {
        self.members.len() * self.transforms.len() * self.scales.len()
    }

    /// The batch size for tiles of `h x w` pixels chosen by [`crate::autobatch::choose`]
    /// (at most `cap`), timing batches of zero tiles through every view; remembered per
    /// tile shape. The choice and its trials are logged.
    pub fn auto_batch(&mut self, h: usize, w: usize, cap: usize) -> Result<usize> {
        if let Some(&b) = self.auto_batches.get(&(h, w)) {
            return Ok(b);
        }
        let c = self.info().channels;
        let (mut input, mut probs) = (Vec::new(), Vec::new());
        let choice = crate::autobatch::choose(cap, |n| {
            input.resize(n * c * h * w, 0.0);
            probs.resize(n * NUM_CLASSES * h * w, 0.0);
            let t0 = Instant::now();
            self.run(&input, n, h, w, &mut probs, None)?;
            Ok::<_, ModelError>(t0.elapsed())
        })?;
        tracing::info!("--batch auto for {h}x{w} tiles on {}: {choice}", self.provider());
        self.auto_batches.insert((h, w), choice.batch);
        Ok(choice.batch)
    }

    /// Runs a batch: `input` is `(n, C, h, w)` normalised float32; writes the mean
    /// `(n, 3, h, w)` probabilities of all views into `probs` and, when given, the
    /// normalised mutual information `(n, h, w)` into `mutual_info` (0 with one view).
    pub fn run(
        &mut self,
        input: &[f32],
        n: usize,
        h: usize,
        w: usize,
        probs: &mut [f32],
        mutual_info: Option<&mut [f32]>,
    ) -> Result<()> {
        let c = self.info().channels;
        assert_eq!(input.len(), n * c * h * w, "input batch size");
        assert_eq!(probs.len(), n * NUM_CLASSES * h * w, "output batch size");
        if self.views() == 1 {
            if let Some(mi) = mutual_info {
                mi.fill(0.0);
            }
            return self.members[0].run(input, n, h, w, probs);
        }
        let want_mi = mutual_info.is_some();
        let plane = h * w;
        self.sum.clear();
        self.sum.resize(probs.len(), 0.0);
        self.entropy_sum.clear();
        if want_mi {
            self.entropy_sum.resize(n * plane, 0.0);
        }
        for &scale in &self.scales {
            let (sh, sw) = (scaled_side(h, scale), scaled_side(w, scale));
            let resampled = (sh, sw) != (h, w);
            let x_s: &[f32] = if resampled {
                self.scaled.resize(n * c * sh * sw, 0.0);
                resize_bilinear(input, n * c, (h, w), &mut self.scaled, (sh, sw));
                &self.scaled
            } else {
                input
            };
            for &t in &self.transforms {
                let (th, tw) = t.output_size(sh, sw);
                self.view_in.resize(x_s.len(), 0.0);
                t.apply(x_s, n * c, sh, sw, &mut self.view_in);
                for member in &mut self.members {
                    self.view_out.resize(n * NUM_CLASSES * th * tw, 0.0);
                    member.run(&self.view_in, n, th, tw, &mut self.view_out)?;
                    self.upright.resize(self.view_out.len(), 0.0);
                    t.inverse()
                        .apply(&self.view_out, n * NUM_CLASSES, th, tw, &mut self.upright);
                    let p: &[f32] = if resampled {
                        self.native.resize(probs.len(), 0.0);
                        resize_bilinear(&self.upright, n * NUM_CLASSES, (sh, sw), &mut self.native, (h, w));
                        &self.native
                    } else {
                        &self.upright
                    };
                    for (s, &v) in self.sum.iter_mut().zip(p) {
                        *s += v;
                    }
                    if want_mi {
                        add_entropies(p, n, plane, &mut self.entropy_sum);
                    }
                }
            }
        }
        let inv = 1.0 / self.views() as f32;
        for (o, &s) in probs.iter_mut().zip(&self.sum) {
            *o = s * inv;
        }
        if let Some(mi) = mutual_info {
            assert_eq!(mi.len(), n * plane, "mutual information size");
            for i in 0..n {
                let p = &probs[i * NUM_CLASSES * plane..(i + 1) * NUM_CLASSES * plane];
                for (j, m) in mi[i * plane..(i + 1) * plane].iter_mut().enumerate() {
                    let mean = [p[j], p[plane + j], p[2 * plane + j]];
                    *m = information_gap(mean, self.entropy_sum[i * plane + j] * inv);
                }
            }
        }
        Ok(())
    }
}

/// Adds the per-pixel entropy of `p` (`(n, 3, plane)`) to `sums` (`(n, plane)`).
fn add_entropies(p: &[f32], n: usize, plane: usize, sums: &mut [f32]) {
    for i in 0..n {
        let p = &p[i * NUM_CLASSES * plane..(i + 1) * NUM_CLASSES * plane];
        for (j, s) in sums[i * plane..(i + 1) * plane].iter_mut().enumerate() {
            *s += entropy([p[j], p[plane + j], p[2 * plane + j]]);
        }
    }
}

/// How member `b` reads its input differently from member `a`, if it does.
fn contract_difference(a: &ModelInfo, b: &ModelInfo) -> Option<String> {
    let differ = |field: &str, x: String, y: String| Some(format!("{field} {y} (the first model has {x})"));
    if a.channels != b.channels {
        return differ("input channels", a.channels.to_string(), b.channels.to_string());
    }
    if a.bands != b.bands {
        return differ("risk.bands", format!("{:?}", a.bands), format!("{:?}", b.bands));
    }
    if a.scale != b.scale {
        let s = |v: &Option<Vec<f32>>| v.as_ref().map_or("the default".to_string(), |v| format!("{v:?}"));
        return differ("risk.scale", s(&a.scale), s(&b.scale));
    }
    if a.mean != b.mean {
        return differ("risk.mean", format!("{:?}", a.mean), format!("{:?}", b.mean));
    }
    if a.std != b.std {
        return differ("risk.std", format!("{:?}", a.std), format!("{:?}", b.std));
    }
    if (a.tile_size, a.tile_overlap) != (b.tile_size, b.tile_overlap) {
        return differ(
            "tile size/overlap",
            format!("{}/{}", a.tile_size, a.tile_overlap),
            format!("{}/{}", b.tile_size, b.tile_overlap),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_is_zero_for_one_hot_and_one_for_uniform() {
        assert_eq!(normalised_entropy([1.0, 0.0, 0.0]), 0.0);
        assert!((normalised_entropy([1.0 / 3.0; 3]) - 1.0).abs() < 1e-6);
        // By hand: H(0.5, 0.5, 0) = ln 2, / ln 3 = 0.63093.
        assert!((normalised_entropy([0.5, 0.5, 0.0]) - 0.630_93).abs() < 1e-5);
    }

    #[test]
    fn mutual_information_by_hand() {
        // Views that agree carry no epistemic uncertainty, whatever their entropy.
        assert_eq!(mutual_information(&[[0.0, 0.0, 1.0]; 4]), 0.0);
        assert_eq!(mutual_information(&[[0.2, 0.3, 0.5]; 3]), 0.0);
        assert_eq!(mutual_information(&[[1.0 / 3.0; 3]; 2]), 0.0);
        // One-hot views on three classes: the mean is uniform (H = ln 3), each view has
        // H = 0, so MI = 1.
        let disagree = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert!((mutual_information(&disagree) - 1.0).abs() < 1e-6);
        // Two one-hot views on two classes: H(0.5, 0.5, 0) - 0 = ln 2 -> 0.63093.
        let two = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        assert!((mutual_information(&two) - 0.630_93).abs() < 1e-5);
        // (0.8, 0.2, 0) and (0.2, 0.8, 0): ln 2 - H(0.8, 0.2) = 0.693147 - 0.500402
        // = 0.192745 nats -> 0.175443.
        let soft = [[0.8, 0.2, 0.0], [0.2, 0.8, 0.0]];
        assert!((mutual_information(&soft) - 0.175_443).abs() < 1e-5);
    }
}
