//! The U-Net decoder of smp 0.6.0 (`decoders/unet/decoder.py`, no centre block, no decoder
//! attention, nearest interpolation, BatchNorm).
//!
//! Block `i` takes the running features, resizes them (nearest) to the size of the next
//! finer encoder scale, concatenates that scale's features (none for the last block, which
//! goes back to the input resolution), then applies two `Conv3x3 (no bias) -> BatchNorm
//! (eps 1e-5, momentum 0.1) -> ReLU` layers. For B4 with decoder channels
//! (256, 128, 64, 32, 16) the blocks are (in, skip, out):
//! (448, 160, 256) (256, 56, 128) (128, 32, 64) (64, 48, 32) (32, 0, 16).
//! Variable names: `decoder.blocks.{i}.conv{1,2}.{0 = conv, 1 = bn}.*`.

use tch::Tensor;
use tch::nn;

/// `Conv2dReLU` of smp: conv 3x3 (padding 1, no bias), BatchNorm, ReLU; the conv at
/// `{path}.0`, the norm at `{path}.1`.
#[derive(Debug)]
struct ConvBnRelu {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBnRelu {
    fn new(vs: &nn::Path, cin: i64, cout: i64) -> Self {
        // smp's initialize_decoder: kaiming_uniform_(fan_in, relu), BN weight 1, bias 0.
        let conv_cfg = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        let bn_cfg = nn::BatchNormConfig {
            ws_init: nn::Init::Const(1.0),
            ..Default::default()
        };
        Self {
            conv: nn::conv2d(vs / 0, cin, cout, 3, conv_cfg),
            bn: nn::batch_norm2d(vs / 1, cout, bn_cfg),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply(&self.conv).apply_t(&self.bn, train).relu()
    }
}

/// One `UnetDecoderBlock`.
#[derive(Debug)]
pub struct DecoderBlock {
    conv1: ConvBnRelu,
    conv2: ConvBnRelu,
}

impl DecoderBlock {
    pub fn new(vs: &nn::Path, input: i64, skip: i64, output: i64) -> Self {
        Self {
            conv1: ConvBnRelu::new(&(vs / "conv1"), input + skip, output),
            conv2: ConvBnRelu::new(&(vs / "conv2"), output, output),
        }
    }

    /// `(N, input, h, w)` and an optional `(N, skip, H', W')` -> `(N, output, H', W')`,
    /// where `(H', W')` is `size`.
    pub fn forward_t(&self, xs: &Tensor, size: [i64; 2], skip: Option<&Tensor>, train: bool) -> Tensor {
        let up = xs.upsample_nearest2d(size, None, None); // (N, input, H', W')
        let xs = match skip {
            Some(s) => Tensor::cat(&[&up, s], 1), // (N, input + skip, H', W')
            None => up,
        };
        let xs = self.conv1.forward_t(&xs, train);
        self.conv2.forward_t(&xs, train)
    }
}

/// The five decoder blocks (`decoder.blocks.*`).
#[derive(Debug)]
pub struct Decoder {
    blocks: Vec<DecoderBlock>,
}

impl Decoder {
    /// `encoder_channels`: the six encoder scales (input first, as
    /// [`crate::model::EncoderConfig::skip_channels`]); `decoder_channels`: output channels
    /// of the five blocks, coarsest first.
    pub fn new(vs: &nn::Path, encoder_channels: &[i64; 6], decoder_channels: &[i64; 5]) -> Self {
        // Encoder scales without the input, deepest first: [448, 160, 56, 32, 48] for B4.
        let rev: Vec<i64> = encoder_channels[1..].iter().rev().copied().collect();
        let blocks_vs = vs / "blocks";
        let blocks = (0..5)
            .map(|i| {
                let input = if i == 0 { rev[0] } else { decoder_channels[i - 1] };
                let skip = rev.get(i + 1).copied().unwrap_or(0);
                DecoderBlock::new(&(&blocks_vs / i), input, skip, decoder_channels[i])
            })
            .collect();
        Self { blocks }
    }

    /// The six encoder scales (finest first, as the encoder returns them) ->
    /// `(N, decoder_channels[4], H, W)` at the input resolution.
    pub fn forward_t(&self, features: &[Tensor], train: bool) -> Tensor {
        assert_eq!(features.len(), 6, "the decoder takes the six encoder scales");
        let size = |t: &Tensor| {
            let s = t.size();
            [s[2], s[3]]
        };
        let mut xs = features[5].shallow_clone(); // (N, 448, H/32, W/32) for B4
        for (i, block) in self.blocks.iter().enumerate() {
            // Target scale: features[4] for block 0 ... features[0] (the input) for block 4.
            let target = &features[4 - i];
            let skip = (i < 4).then_some(target);
            xs = block.forward_t(&xs, size(target), skip, train);
        }
        xs
    }
}
