//! CBAM-style attention (Woo et al. 2018), new in the source's V2.5 and applied to the
//! deepest encoder features only (`docs/spec.md`, "Model", attention).
//!
//! 1. Channel attention: global average pool and global max pool, each through a shared
//!    MLP `C -> C/16 -> C` (1x1 convolutions with bias, ReLU between), summed, sigmoid,
//!    multiplied onto the features.
//!
//!    "Global" means the whole tile, so the gate a pixel gets depends on the tile size:
//!    a model trained on 256 px tiles but run on 1024 px tiles pools 16 times the area it
//!    learnt from. With a pooling window (`model.attention_window`, in pixels; 0 = the
//!    whole map, the source's CBAM) the pools are taken over non-overlapping windows of
//!    that many pixels (the last ones cut by the map's edge, averaged over what they
//!    hold) and each window's gate is spread over its cells. A window of the training
//!    tile is the source's CBAM on every training tile and keeps the model's view the same
//!    on any larger tile.
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
    /// Channel-pooling window in feature cells; 0 pools the whole map.
    window: i64,
}

impl Cbam {
    /// Builds the module under `vs` (the `attention` path) for `channels` feature channels;
    /// the channel pools cover windows of `window` feature cells (0: the whole map).
    pub fn new(vs: &nn::Path, channels: i64, window: i64) -> Self {
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
            window,
        }
    }

    fn mlp(&self, pooled: &Tensor) -> Tensor {
        pooled.apply(&self.channel_fc1).relu().apply(&self.channel_fc2)
    }

    /// The channel gate: `(N, C, 1, 1)` without a window, else `(N, C, h, w)` (each
    /// window's gate repeated over its cells).
    pub fn channel_gate(&self, xs: &Tensor) -> Tensor {
        if self.window == 0 {
            let avg = xs.adaptive_avg_pool2d([1, 1]); // (N, C, 1, 1)
            let max = xs.amax([2, 3], true); // (N, C, 1, 1)
            return (self.mlp(&avg) + self.mlp(&max)).sigmoid();
        }
        let (h, w) = (xs.size()[2], xs.size()[3]);
        let k = [self.window, self.window];
        // ceil_mode: a last, partial window; count_include_pad off: averaged over its cells.
        let avg = xs.avg_pool2d(k, k, [0, 0], true, false, None::<i64>); // (N, C, a, b)
        let max = xs.max_pool2d(k, k, [0, 0], [1, 1], true); // (N, C, a, b)
        let gate = (self.mlp(&avg) + self.mlp(&max)).sigmoid(); // (N, C, a, b)
        gate.repeat_interleave_self_int(self.window, 2, None::<i64>)
            .repeat_interleave_self_int(self.window, 3, None::<i64>)
            .narrow(2, 0, h)
            .narrow(3, 0, w) // (N, C, h, w)
    }

    /// `(N, C, h, w)` -> `(N, C, h, w)`.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let xs = xs * self.channel_gate(xs);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn pair(window: i64) -> (nn::VarStore, Cbam, nn::VarStore, Cbam) {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let global = Cbam::new(&vs.root(), 32, 0);
        let mut vs2 = nn::VarStore::new(Device::Cpu);
        let windowed = Cbam::new(&vs2.root(), 32, window);
        vs2.copy(&vs).unwrap();
        (vs, global, vs2, windowed)
    }

    #[test]
    fn a_map_no_larger_than_the_window_gets_the_global_cbam() {
        let (_a, global, _b, windowed) = pair(8);
        let xs = Tensor::randn([2, 32, 4, 4], (Kind::Float, Device::Cpu));
        let d = (global.forward(&xs) - windowed.forward(&xs))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-6, "max diff {d}");
    }

    #[test]
    fn each_window_is_gated_as_its_own_map_the_last_one_cut_by_the_edge() {
        let (_a, global, _b, windowed) = pair(2);
        // 5 x 5 cells: windows start at 0, 2, 4; the last row / column holds one cell.
        let xs = Tensor::randn([1, 32, 5, 5], (Kind::Float, Device::Cpu));
        let gate = windowed.channel_gate(&xs);
        assert_eq!(gate.size(), vec![1, 32, 5, 5]);
        for (y0, x0, h, w) in [(0, 0, 2, 2), (2, 4, 2, 1), (4, 4, 1, 1), (4, 0, 1, 2)] {
            let crop = xs.narrow(2, y0, h).narrow(3, x0, w);
            let want = global.channel_gate(&crop); // (1, 32, 1, 1)
            for y in y0..y0 + h {
                for x in x0..x0 + w {
                    let got = gate.narrow(2, y, 1).narrow(3, x, 1);
                    let d = (&got - &want).abs().max().double_value(&[]);
                    assert!(d < 1e-6, "cell ({y}, {x}) of window ({y0}, {x0}): diff {d}");
                }
            }
        }
    }
}
