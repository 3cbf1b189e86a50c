//! CBAM-style attention (Woo et al. 2018), new in the source's V2.5 and applied to the
//! deepest encoder features only (`docs/spec.md`, "Model", attention).
//!
//! 1. Channel attention: global average pool and global max pool, each through a shared
//!    MLP `C -> C/16 -> C` (1x1 convolutions with bias, ReLU between), summed, sigmoid,
//!    multiplied onto the features.
//! 2. Spatial attention: per-pixel mean and max over channels, concatenated to 2 channels,
//!    7x7 convolution to 1 channel (no bias, zero padding 3), sigmoid, multiplied on.
//!
//! It has no counterpart in smp, so its variables live under `attention.*`
//! (`attention.channel_fc1.weight`, `attention.channel_fc2.weight`,
//! `attention.spatial.weight`) and the smp weight import leaves them at their
//! initialisation.

use tch::Tensor;
use tch::nn::{self, Module};

/// Reduction ratio of the channel MLP.
pub const REDUCTION: i64 = 16;
/// Kernel size of the spatial attention convolution.
pub const SPATIAL_KERNEL: i64 = 7;

/// Channel then spatial attention over `(N, C, h, w)` features.
#[derive(Debug)]
pub struct Cbam {
    channel_fc1: nn::Conv2D,
    channel_fc2: nn::Conv2D,
    spatial: nn::Conv2D,
}

impl Cbam {
    /// Builds the module under `vs` (the `attention` path) for `channels` feature channels.
    pub fn new(vs: &nn::Path, channels: i64) -> Self {
        let hidden = (channels / REDUCTION).max(1);
        let spatial_cfg = nn::ConvConfig {
            padding: SPATIAL_KERNEL / 2,
            bias: false,
            ..Default::default()
        };
        Self {
            channel_fc1: nn::conv2d(vs / "channel_fc1", channels, hidden, 1, Default::default()),
            channel_fc2: nn::conv2d(vs / "channel_fc2", hidden, channels, 1, Default::default()),
            spatial: nn::conv2d(vs / "spatial", 2, 1, SPATIAL_KERNEL, spatial_cfg),
        }
    }

    fn mlp(&self, pooled: &Tensor) -> Tensor {
        pooled.apply(&self.channel_fc1).relu().apply(&self.channel_fc2)
    }

    /// `(N, C, h, w)` -> `(N, C, h, w)`.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let avg = xs.adaptive_avg_pool2d([1, 1]); // (N, C, 1, 1)
        let max = xs.amax([2, 3], true); // (N, C, 1, 1)
        let channel = (self.mlp(&avg) + self.mlp(&max)).sigmoid(); // (N, C, 1, 1)
        let xs = xs * channel;
        let mean_c = xs.mean_dim(1, true, None); // (N, 1, h, w)
        let max_c = xs.amax([1], true); // (N, 1, h, w)
        let spatial = Tensor::cat(&[mean_c, max_c], 1).apply(&self.spatial).sigmoid(); // (N, 1, h, w)
        xs * spatial
    }
}

impl Module for Cbam {
    fn forward(&self, xs: &Tensor) -> Tensor {
        Cbam::forward(self, xs)
    }
}
