//! The training losses of `docs/spec.md` ("Training"): softmax focal loss on the class logits plus
//! 0.3 x CORAL loss on the ordinal logits, with nodata pixels ignored.
//!
//! - Focal loss (Lin et al. 2017, multi-class softmax form): per labelled pixel
//!   `-alpha_y (1 - p_y)^gamma log p_y` with `p = softmax(class logits)`; averaged over
//!   the labelled pixels (not weighted by alpha). Defaults gamma 2.5, alpha
//!   `[0.4, 2.5, 2.0]`. With gamma 0 and alpha 1 it is cross-entropy with `ignore_index`.
//! - CORAL loss (Cao et al. 2020, as coral-pytorch's `coral_loss`): per labelled pixel the
//!   sum over the K-1 = 2 ordinal levels `k` of BCE-with-logits(`z_k`, `1[y > k]`),
//!   averaged over the labelled pixels.
//! - Labels are `(N, H, W)` integers (any integer kind): 0, 1, 2, and
//!   [`LossConfig::ignore_index`] (255) for nodata. A batch without labelled pixels gives
//!   a loss of 0 (with a zero gradient), not NaN.
//!
//! Checked against PyTorch in `tests/loss.rs` (values from `tests/reference/loss_reference.py`).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::model::UNetOutput;

/// Loss parameters (the `loss:` section of `config.yaml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// Focusing parameter gamma of the focal loss. Default 2.5.
    pub gamma: f64,
    /// Per-class weights alpha (Low, Medium, High). Default `[0.4, 2.5, 2.0]`.
    pub alpha: Vec<f64>,
    /// Weight of the CORAL term. Default 0.3.
    pub coral_weight: f64,
    /// Label value of nodata pixels, ignored by both terms. Default 255.
    pub ignore_index: i64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            gamma: 2.5,
            alpha: vec![0.4, 2.5, 2.0],
            coral_weight: 0.3,
            ignore_index: 255,
        }
    }
}

/// The combined loss and its two terms (scalars).
#[derive(Debug)]
pub struct LossParts {
    /// `focal + coral_weight * coral`: what the optimiser minimises.
    pub total: Tensor,
    pub focal: Tensor,
    pub coral: Tensor,
}

/// `(valid mask as float, labels with nodata replaced by 0, number of valid pixels >= 1)`.
fn valid_labels(target: &Tensor, ignore_index: i64) -> (Tensor, Tensor, Tensor) {
    let target = target.to_kind(Kind::Int64);
    let valid = target.ne(ignore_index); // (N, H, W) bool
    let safe = target.masked_fill(&valid.logical_not(), 0); // (N, H, W) in 0..K
    let count = valid.sum(Kind::Float).clamp_min(1.0);
    (valid.to_kind(Kind::Float), safe, count)
}

/// Softmax focal loss of `(N, K, H, W)` class logits against `(N, H, W)` labels.
/// `alpha` has one weight per class.
pub fn focal_loss(logits: &Tensor, target: &Tensor, alpha: &[f64], gamma: f64, ignore_index: i64) -> Tensor {
    let (valid, safe, count) = valid_labels(target, ignore_index);
    let log_p = logits
        .log_softmax(1, Kind::Float)
        .gather(1, &safe.unsqueeze(1), false)
        .squeeze_dim(1); // (N, H, W): log p_y
    let alpha = Tensor::from_slice(alpha)
        .to_kind(Kind::Float)
        .to_device(logits.device());
    let alpha_y = alpha.index_select(0, &safe.flatten(0, -1)).view_as(&safe); // (N, H, W)
    let modulating = (-log_p.exp() + 1.0).clamp_min(0.0).pow_tensor_scalar(gamma); // (1 - p_y)^gamma
    let per_pixel = -(alpha_y * modulating * log_p);
    (per_pixel * valid).sum(Kind::Float) / count
}

/// CORAL loss of `(N, K-1, H, W)` ordinal logits against `(N, H, W)` labels.
pub fn coral_loss(ordinal_logits: &Tensor, target: &Tensor, ignore_index: i64) -> Tensor {
    let (valid, safe, count) = valid_labels(target, ignore_index);
    let thresholds = ordinal_logits.size()[1];
    let levels: Vec<Tensor> = (0..thresholds).map(|k| safe.gt(k).to_kind(Kind::Float)).collect();
    let levels = Tensor::stack(&levels, 1); // (N, K-1, H, W): 1[y > k]
    let bce = ordinal_logits
        .to_kind(Kind::Float)
        .binary_cross_entropy_with_logits(&levels, None::<Tensor>, None::<Tensor>, tch::Reduction::None); // (N, K-1, H, W)
    let per_pixel = bce.sum_dim_intlist(1, false, Kind::Float); // (N, H, W)
    (per_pixel * valid).sum(Kind::Float) / count
}

/// `focal + coral_weight * coral` for a model output.
pub fn risk_loss(output: &UNetOutput, target: &Tensor, cfg: &LossConfig) -> LossParts {
    let focal = focal_loss(
        &output.class_logits,
        target,
        &cfg.alpha,
        cfg.gamma,
        cfg.ignore_index,
    );
    let coral = coral_loss(&output.ordinal_logits, target, cfg.ignore_index);
    let total = &focal + &coral * cfg.coral_weight;
    LossParts { total, focal, coral }
}
