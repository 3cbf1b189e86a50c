//! EfficientNet encoder, as in the copy of `efficientnet_pytorch` that smp 0.6.0 carries
//! (`segmentation_models_pytorch/encoders/_efficientnet.py`) and wraps as its
//! `efficientnet-b0` / `efficientnet-b4` encoders.
//!
//! - Variants are data: [`EncoderConfig::b0`], [`EncoderConfig::b4`] hold the width and depth
//!   coefficients, the nominal image size and the feature taps; [`EncoderConfig::blocks`]
//!   expands the seven base (B0) stages into one [`BlockConfig`] per MBConv block with the
//!   same rounding as `round_filters` / `round_repeats`.
//! - Every convolution has TensorFlow-"same" padding computed once for the **nominal** image
//!   size (224 for B0, 380 for B4), never for the real input ([`StaticPad::same`]): B4's
//!   `_blocks.6._depthwise_conv` pads 2, 2 where "same" on a 64 px input would pad 1, 2.
//! - BatchNorm eps 1e-3 and momentum 0.01 (PyTorch convention; [`EncoderConfig::bn_momentum`]
//!   changes it for training from scratch), swish (SiLU), squeeze and
//!   excitation with `input_channels / 4` squeezed channels, drop-connect in training with
//!   rate `0.2 * block_index / block_count` on blocks with an identity skip.
//! - [`Encoder::forward_t`] returns the six scales smp's decoder consumes: the input, the
//!   stem output (stride 2) and the outputs of the tap blocks (strides 4, 8, 16, 32).
//!   `_conv_head` / `_bn1` exist (smp keeps them, so state dicts and parameter counts
//!   match) but take no part in the forward pass.

use tch::Tensor;
use tch::nn;

/// BatchNorm epsilon of the EfficientNet encoder (`batch_norm_epsilon`).
pub const BN_EPS: f64 = 1e-3;
/// BatchNorm momentum in the PyTorch convention (`1 - 0.99`).
pub const BN_MOMENTUM: f64 = 0.01;

/// One of the seven stages of the base (B0) network, before width/depth scaling
/// (`r1_k3_s11_e1_i32_o16_se0.25` and so on).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageArgs {
    pub repeats: usize,
    pub kernel: i64,
    pub stride: i64,
    pub expand_ratio: i64,
    pub input: i64,
    pub output: i64,
}

const fn stage(
    repeats: usize,
    kernel: i64,
    stride: i64,
    expand_ratio: i64,
    input: i64,
    output: i64,
) -> StageArgs {
    StageArgs {
        repeats,
        kernel,
        stride,
        expand_ratio,
        input,
        output,
    }
}

/// The base stages of `efficientnet_pytorch` (all with squeeze-excitation ratio 0.25).
pub const BASE_STAGES: [StageArgs; 7] = [
    stage(1, 3, 1, 1, 32, 16),
    stage(2, 3, 2, 6, 16, 24),
    stage(2, 5, 2, 6, 24, 40),
    stage(3, 3, 2, 6, 40, 80),
    stage(3, 5, 1, 6, 80, 112),
    stage(4, 5, 2, 6, 112, 192),
    stage(1, 3, 1, 6, 192, 320),
];

/// Zero padding of one convolution: (left, right) along W, (top, bottom) along H.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StaticPad {
    pub left: i64,
    pub right: i64,
    pub top: i64,
    pub bottom: i64,
}

impl StaticPad {
    /// `Conv2dStaticSamePadding`'s padding for a square `image_size` input, kernel `kernel`
    /// and stride `stride`: `pad = max((ceil(i/s) - 1) * s + k - i, 0)`, split `pad / 2`
    /// before and the rest after.
    pub fn same(image_size: i64, kernel: i64, stride: i64) -> Self {
        let out = (image_size + stride - 1) / stride;
        let pad = ((out - 1) * stride + kernel - image_size).max(0);
        Self {
            left: pad / 2,
            right: pad - pad / 2,
            top: pad / 2,
            bottom: pad - pad / 2,
        }
    }

    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// One MBConv block after scaling: what [`MbConv::new`] builds.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockConfig {
    /// Position in `_blocks` (0-based).
    pub index: usize,
    pub input: i64,
    pub output: i64,
    pub kernel: i64,
    pub stride: i64,
    pub expand_ratio: i64,
    /// Squeeze-excitation width: `max(1, int(input * 0.25))`.
    pub se_channels: i64,
    /// Static padding of the depthwise convolution (computed at the nominal image size).
    pub pad: StaticPad,
    /// Drop-connect probability in training: `rate * index / block_count`.
    pub drop_connect: f64,
    /// BatchNorm momentum (PyTorch convention), the encoder's [`EncoderConfig::bn_momentum`].
    pub bn_momentum: f64,
}

impl BlockConfig {
    /// Channels after the expansion convolution.
    pub fn expanded(&self) -> i64 {
        self.input * self.expand_ratio
    }

    /// Whether the block adds its input to its output (and so applies drop-connect).
    pub fn has_skip(&self) -> bool {
        self.stride == 1 && self.input == self.output
    }
}

/// An EfficientNet variant, as data.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderConfig {
    /// smp / efficientnet_pytorch name, e.g. `efficientnet-b4`.
    pub name: &'static str,
    pub width_coefficient: f64,
    pub depth_coefficient: f64,
    /// Image size the static paddings are computed for (not the real input size).
    pub image_size: i64,
    /// Maximum drop-connect probability (reached by the last block).
    pub drop_connect_rate: f64,
    pub stages: [StageArgs; 7],
    /// Blocks whose outputs are the stride 4, 8, 16 and 32 features (smp `out_indexes`).
    pub out_indexes: [usize; 4],
    /// BatchNorm momentum (PyTorch convention: the weight of the batch statistics in the
    /// running estimates). [`BN_MOMENTUM`] (0.01) as `efficientnet_pytorch`, tuned for
    /// long runs that start from ImageNet statistics; a short run from random weights
    /// needs more (0.1, PyTorch's default), or evaluation-mode outputs use running
    /// statistics that lag far behind the weights.
    pub bn_momentum: f64,
}

impl EncoderConfig {
    /// EfficientNet-B0: width 1.0, depth 1.0, 224 px; skips `[3, 32, 24, 40, 112, 320]`.
    pub fn b0() -> Self {
        Self {
            name: "efficientnet-b0",
            width_coefficient: 1.0,
            depth_coefficient: 1.0,
            image_size: 224,
            drop_connect_rate: 0.2,
            stages: BASE_STAGES,
            out_indexes: [2, 4, 8, 15],
            bn_momentum: BN_MOMENTUM,
        }
    }

    /// EfficientNet-B4: width 1.4, depth 1.8, 380 px; skips `[3, 48, 32, 56, 160, 448]`.
    pub fn b4() -> Self {
        Self {
            name: "efficientnet-b4",
            width_coefficient: 1.4,
            depth_coefficient: 1.8,
            image_size: 380,
            drop_connect_rate: 0.2,
            stages: BASE_STAGES,
            out_indexes: [5, 9, 21, 31],
            bn_momentum: BN_MOMENTUM,
        }
    }

    /// `round_filters`: scale by the width coefficient, round to a multiple of 8, never
    /// down by more than 10%.
    pub fn round_filters(&self, filters: i64) -> i64 {
        let scaled = filters as f64 * self.width_coefficient;
        let mut rounded = 8.max((scaled + 4.0) as i64 / 8 * 8);
        if (rounded as f64) < 0.9 * scaled {
            rounded += 8;
        }
        rounded
    }

    /// `round_repeats`: `ceil(depth_coefficient * repeats)`.
    pub fn round_repeats(&self, repeats: usize) -> usize {
        (self.depth_coefficient * repeats as f64).ceil() as usize
    }

    /// Output channels of the stem convolution (32 scaled).
    pub fn stem_channels(&self) -> i64 {
        self.round_filters(32)
    }

    /// Output channels of the (unused) `_conv_head` (1280 scaled).
    pub fn head_channels(&self) -> i64 {
        self.round_filters(1280)
    }

    /// Static padding of the stride-2 stem convolution.
    pub fn stem_pad(&self) -> StaticPad {
        StaticPad::same(self.image_size, 3, 2)
    }

    /// Every MBConv block in order, with the nominal image size tracked as
    /// `efficientnet_pytorch` does (reduced after the first block of each stage).
    pub fn blocks(&self) -> Vec<BlockConfig> {
        let mut size = ceil_div(self.image_size, 2); // after the stem
        let mut out = Vec::new();
        for st in &self.stages {
            let input = self.round_filters(st.input);
            let output = self.round_filters(st.output);
            for r in 0..self.round_repeats(st.repeats) {
                let (block_in, stride) = if r == 0 { (input, st.stride) } else { (output, 1) };
                out.push(BlockConfig {
                    index: out.len(),
                    input: block_in,
                    output,
                    kernel: st.kernel,
                    stride,
                    expand_ratio: st.expand_ratio,
                    se_channels: 1.max((block_in as f64 * 0.25) as i64),
                    pad: StaticPad::same(size, st.kernel, stride),
                    drop_connect: 0.0,
                    bn_momentum: self.bn_momentum,
                });
                if r == 0 {
                    size = ceil_div(size, st.stride);
                }
            }
        }
        let count = out.len() as f64;
        for b in &mut out {
            b.drop_connect = self.drop_connect_rate * b.index as f64 / count;
        }
        out
    }

    /// Channels of the six scales returned by [`Encoder::forward_t`], input first
    /// (smp `out_channels`): `[3, 48, 32, 56, 160, 448]` for B4.
    pub fn skip_channels(&self, in_channels: i64) -> [i64; 6] {
        let blocks = self.blocks();
        let tap = |i: usize| blocks[self.out_indexes[i]].output;
        [in_channels, self.stem_channels(), tap(0), tap(1), tap(2), tap(3)]
    }
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

fn bn(vs: &nn::Path, channels: i64, momentum: f64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        eps: BN_EPS,
        momentum,
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    };
    nn::batch_norm2d(vs, channels, cfg)
}

/// PyTorch's default convolution initialisation (`kaiming_uniform_(a=sqrt(5))`, i.e.
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases); `efficientnet_pytorch`
/// keeps it.
fn torch_default_conv(
    vs: &nn::Path,
    cin: i64,
    cout: i64,
    kernel: i64,
    stride: i64,
    groups: i64,
    bias: bool,
) -> nn::Conv2D {
    let fan_in = (cin / groups * kernel * kernel) as f64;
    let bound = 1.0 / fan_in.sqrt();
    let cfg = nn::ConvConfig {
        stride,
        groups,
        bias,
        ws_init: nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
        bs_init: nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
        ..Default::default()
    };
    nn::conv2d(vs, cin, cout, kernel, cfg)
}

/// `Conv2dStaticSamePadding`: a fixed zero pad, then an unpadded convolution. The
/// weight sits directly under the module's path (`_conv_stem.weight`).
#[derive(Debug)]
pub struct StaticSameConv {
    conv: nn::Conv2D,
    pad: StaticPad,
}

impl StaticSameConv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        vs: &nn::Path,
        cin: i64,
        cout: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
        bias: bool,
        pad: StaticPad,
    ) -> Self {
        let conv = torch_default_conv(vs, cin, cout, kernel, stride, groups, bias);
        Self { conv, pad }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        if self.pad.is_zero() {
            xs.apply(&self.conv)
        } else {
            let p = self.pad;
            xs.zero_pad2d(p.left, p.right, p.top, p.bottom).apply(&self.conv)
        }
    }
}

/// Mobile inverted bottleneck block (`MBConvBlock`): expand 1x1, depthwise kxk, squeeze
/// and excitation, project 1x1, identity skip with drop-connect.
#[derive(Debug)]
pub struct MbConv {
    cfg: BlockConfig,
    expand: Option<(StaticSameConv, nn::BatchNorm)>,
    depthwise: StaticSameConv,
    bn1: nn::BatchNorm,
    se_reduce: StaticSameConv,
    se_expand: StaticSameConv,
    project: StaticSameConv,
    bn2: nn::BatchNorm,
}

impl MbConv {
    /// Builds `_blocks.{index}` under `vs` (which is the `_blocks.{index}` path).
    pub fn new(vs: &nn::Path, cfg: &BlockConfig) -> Self {
        let none = StaticPad::default();
        let (cin, mid, cout) = (cfg.input, cfg.expanded(), cfg.output);
        let expand = (cfg.expand_ratio != 1).then(|| {
            (
                StaticSameConv::new(&(vs / "_expand_conv"), cin, mid, 1, 1, 1, false, none),
                bn(&(vs / "_bn0"), mid, cfg.bn_momentum),
            )
        });
        let depthwise = StaticSameConv::new(
            &(vs / "_depthwise_conv"),
            mid,
            mid,
            cfg.kernel,
            cfg.stride,
            mid,
            false,
            cfg.pad,
        );
        let se = cfg.se_channels;
        Self {
            cfg: cfg.clone(),
            expand,
            depthwise,
            bn1: bn(&(vs / "_bn1"), mid, cfg.bn_momentum),
            se_reduce: StaticSameConv::new(&(vs / "_se_reduce"), mid, se, 1, 1, 1, true, none),
            se_expand: StaticSameConv::new(&(vs / "_se_expand"), se, mid, 1, 1, 1, true, none),
            project: StaticSameConv::new(&(vs / "_project_conv"), mid, cout, 1, 1, 1, false, none),
            bn2: bn(&(vs / "_bn2"), cout, cfg.bn_momentum),
        }
    }

    /// `(N, input, H, W)` -> `(N, output, H / stride, W / stride)`.
    pub fn forward_t(&self, inputs: &Tensor, train: bool) -> Tensor {
        let mut xs = match &self.expand {
            Some((conv, bn0)) => conv.forward(inputs).apply_t(bn0, train).silu(), // (N, mid, H, W)
            None => inputs.shallow_clone(),
        };
        xs = self.depthwise.forward(&xs).apply_t(&self.bn1, train).silu(); // (N, mid, H/s, W/s)
        let squeezed = xs.adaptive_avg_pool2d([1, 1]); // (N, mid, 1, 1)
        let gate = self.se_expand.forward(&self.se_reduce.forward(&squeezed).silu()); // (N, mid, 1, 1)
        xs = gate.sigmoid() * xs;
        let projected = self.project.forward(&xs).apply_t(&self.bn2, train); // (N, output, H/s, W/s)
        if !self.cfg.has_skip() {
            return projected;
        }
        let residual = if train && self.cfg.drop_connect > 0.0 {
            drop_connect(&projected, self.cfg.drop_connect)
        } else {
            projected
        };
        residual + inputs
    }
}

/// Stochastic depth as `efficientnet_pytorch.drop_connect`: each sample's residual branch
/// is zeroed with probability `p` and the survivors are scaled by `1 / (1 - p)`.
fn drop_connect(xs: &Tensor, p: f64) -> Tensor {
    let keep = 1.0 - p;
    let n = xs.size()[0];
    let mask = (Tensor::rand([n, 1, 1, 1], (xs.kind(), xs.device())) + keep).floor(); // (N, 1, 1, 1) of 0/1
    xs / keep * mask
}

/// The EfficientNet encoder (`encoder.*` in the smp state dict).
#[derive(Debug)]
pub struct Encoder {
    cfg: EncoderConfig,
    conv_stem: StaticSameConv,
    bn0: nn::BatchNorm,
    blocks: Vec<MbConv>,
    /// Unused by the forward pass; kept for state-dict and parameter-count parity with smp.
    _conv_head: StaticSameConv,
    _bn1: nn::BatchNorm,
}

impl Encoder {
    /// Builds the encoder under `vs` (the `encoder` path) for `in_channels` input bands.
    pub fn new(vs: &nn::Path, cfg: &EncoderConfig, in_channels: i64) -> Self {
        let stem = cfg.stem_channels();
        let blocks_cfg = cfg.blocks();
        let blocks_vs = vs / "_blocks";
        let blocks: Vec<MbConv> = blocks_cfg
            .iter()
            .map(|b| MbConv::new(&(&blocks_vs / b.index), b))
            .collect();
        let last = blocks_cfg.last().map_or(stem, |b| b.output);
        let none = StaticPad::default();
        Self {
            cfg: cfg.clone(),
            conv_stem: StaticSameConv::new(
                &(vs / "_conv_stem"),
                in_channels,
                stem,
                3,
                2,
                1,
                false,
                cfg.stem_pad(),
            ),
            bn0: bn(&(vs / "_bn0"), stem, cfg.bn_momentum),
            blocks,
            _conv_head: StaticSameConv::new(
                &(vs / "_conv_head"),
                last,
                cfg.head_channels(),
                1,
                1,
                1,
                false,
                none,
            ),
            _bn1: bn(&(vs / "_bn1"), cfg.head_channels(), cfg.bn_momentum),
        }
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// `(N, C, H, W)` -> the six scales, for B4:
    /// `[(N, C, H, W), (N, 48, H/2, W/2), (N, 32, H/4, W/4), (N, 56, H/8, W/8),
    ///   (N, 160, H/16, W/16), (N, 448, H/32, W/32)]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let mut features = vec![xs.shallow_clone()];
        let mut x = self.conv_stem.forward(xs).apply_t(&self.bn0, train).silu(); // (N, stem, H/2, W/2)
        features.push(x.shallow_clone());
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_t(&x, train);
            if self.cfg.out_indexes.contains(&i) {
                features.push(x.shallow_clone());
            }
        }
        features
    }
}
