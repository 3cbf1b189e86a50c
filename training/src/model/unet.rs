//! The whole model: [`RiskUNet`] = encoder -> (CBAM) -> decoder -> class head + CORAL head.
//!
//! - Class head (`segmentation_head.0.*`, smp's name for the conv): Dropout2d(0.4) in
//!   training, then Conv3x3 `decoder_channels[4] -> 3` with bias: the class logits.
//! - CORAL head (Cao, Mirjalili & Raschka 2020; `coral.weight`, `coral.bias`): one shared
//!   1x1 weight (no bias) over the same decoder features (before the dropout) and K-1 = 2
//!   biases, so that `ordinal_logits[k] = w . f + b_k` are the logits of `P(y > k)`.
//!   The biases start at `[1.0, 0.5]` (decreasing, as coral-pytorch's `CoralLayer`).
//! - [`UNetConfig::b4`] is the V2.5 source model, [`UNetConfig::b0`] the edge variant.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::attention::Cbam;
use super::decoder::Decoder;
use super::encoder::{Encoder, EncoderConfig};

/// Number of ordinal classes (Low, Medium, High): the project's one definition,
/// `risk_inference::classes::NUM_CLASSES`, as the i64 that tensor shapes take.
pub const CLASSES: i64 = risk_inference::classes::NUM_CLASSES as i64;

/// The encoder's deepest stride: CBAM's features are `(H / 32, W / 32)`.
pub const DEEPEST_STRIDE: i64 = 32;

/// Everything that shapes the network.
#[derive(Clone, Debug, PartialEq)]
pub struct UNetConfig {
    pub encoder: EncoderConfig,
    /// Output channels of the five decoder blocks, coarsest first.
    pub decoder_channels: [i64; 5],
    /// Input bands (3 for RGB, 4 for RGB + NIR).
    pub in_channels: i64,
    /// CBAM on the deepest encoder features.
    pub attention: bool,
    /// CBAM's channel-pooling window in input pixels (a multiple of the deepest stride,
    /// 32); 0 pools the whole tile, as the source's CBAM does.
    pub attention_window: i64,
    /// Dropout2d probability before the class conv (training only).
    pub head_dropout: f64,
}

impl UNetConfig {
    /// EfficientNet-B4 encoder, decoder (256, 128, 64, 32, 16), CBAM on, RGB.
    pub fn b4() -> Self {
        Self {
            encoder: EncoderConfig::b4(),
            decoder_channels: [256, 128, 64, 32, 16],
            in_channels: 3,
            attention: true,
            attention_window: 0,
            head_dropout: 0.4,
        }
    }

    /// The edge variant: EfficientNet-B0 encoder, decoder (128, 64, 32, 16, 8), CBAM on, RGB.
    pub fn b0() -> Self {
        Self {
            encoder: EncoderConfig::b0(),
            decoder_channels: [128, 64, 32, 16, 8],
            ..Self::b4()
        }
    }

    /// The same network without CBAM: the architecture of smp's `Unet` (plus CORAL).
    pub fn without_attention(self) -> Self {
        Self {
            attention: false,
            ..self
        }
    }
}

/// Both heads' outputs for an `(N, C, H, W)` input.
#[derive(Debug)]
pub struct UNetOutput {
    /// `(N, 3, H, W)` class logits (softmax over dim 1 gives class probabilities).
    pub class_logits: Tensor,
    /// `(N, 2, H, W)` CORAL logits: `sigmoid` gives `P(y > 0)`, `P(y > 1)`.
    pub ordinal_logits: Tensor,
}

/// CORAL head: shared 1x1 weight without bias plus one bias per ordinal threshold.
#[derive(Debug)]
struct CoralHead {
    weight: Tensor,
    bias: Tensor,
}

impl CoralHead {
    fn new(vs: &nn::Path, channels: i64) -> Self {
        let bound = 1.0 / (channels as f64).sqrt();
        let weight = vs.var(
            "weight",
            &[1, channels, 1, 1],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        let thresholds = CLASSES - 1;
        let init: Vec<f32> = (0..thresholds)
            .map(|k| (thresholds - k) as f32 / thresholds as f32)
            .collect();
        let bias = vs.var_copy("bias", &Tensor::from_slice(&init));
        Self { weight, bias }
    }

    /// `(N, C, H, W)` -> `(N, K-1, H, W)`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let shared = xs.conv2d(&self.weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1); // (N, 1, H, W)
        shared + self.bias.view([1, -1, 1, 1]) // (N, K-1, H, W)
    }
}

/// The attention U-Net with class and ordinal heads.
#[derive(Debug)]
pub struct RiskUNet {
    cfg: UNetConfig,
    encoder: Encoder,
    attention: Option<Cbam>,
    decoder: Decoder,
    class_conv: nn::Conv2D,
    coral: CoralHead,
}

impl RiskUNet {
    /// Builds the model under `vs` (normally `var_store.root()`), with smp's state-dict
    /// names below it.
    pub fn new(vs: &nn::Path, cfg: &UNetConfig) -> Self {
        let skips = cfg.encoder.skip_channels(cfg.in_channels);
        let encoder = Encoder::new(&(vs / "encoder"), &cfg.encoder, cfg.in_channels);
        let window = cfg.attention_window / DEEPEST_STRIDE;
        let attention = cfg
            .attention
            .then(|| Cbam::new(&(vs / "attention"), skips[5], window));
        let decoder = Decoder::new(&(vs / "decoder"), &skips, &cfg.decoder_channels);
        let features = cfg.decoder_channels[4];
        // smp initialises the segmentation head with xavier_uniform_ and a zero bias.
        let xavier = (6.0 / ((features + CLASSES) * 9) as f64).sqrt();
        let head_cfg = nn::ConvConfig {
            padding: 1,
            ws_init: nn::Init::Uniform {
                lo: -xavier,
                up: xavier,
            },
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let class_conv = nn::conv2d(vs / "segmentation_head" / 0, features, CLASSES, 3, head_cfg);
        let coral = CoralHead::new(&(vs / "coral"), features);
        Self {
            cfg: cfg.clone(),
            encoder,
            attention,
            decoder,
            class_conv,
            coral,
        }
    }

    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// The six encoder scales, with CBAM applied to the deepest one when enabled.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let mut features = self.encoder.forward_t(xs, train);
        if let (Some(att), Some(deepest)) = (&self.attention, features.last_mut()) {
            *deepest = att.forward(deepest); // (N, 448, H/32, W/32) for B4
        }
        features
    }

    /// `(N, C, H, W)` float input, H and W multiples of 32 -> class and ordinal logits.
    /// `train` switches BatchNorm to batch statistics and enables drop-connect and the
    /// head's Dropout2d.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> UNetOutput {
        let features = self.features_t(xs, train);
        let decoded = self.decoder.forward_t(&features, train); // (N, 16, H, W) for B4
        let dropped = decoded.feature_dropout(self.cfg.head_dropout, train);
        UNetOutput {
            class_logits: dropped.apply(&self.class_conv), // (N, 3, H, W)
            ordinal_logits: self.coral.forward(&decoded),  // (N, 2, H, W)
        }
    }
}

impl ModuleT for RiskUNet {
    /// The class logits only (what the ONNX export ships).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        RiskUNet::forward_t(self, xs, train).class_logits
    }
}

/// Trainable parameters by part of the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParameterCounts {
    pub encoder: i64,
    pub decoder: i64,
    /// The class head (`segmentation_head.*`).
    pub head: i64,
    pub attention: i64,
    pub coral: i64,
    /// Anything under another top-level name.
    pub other: i64,
}

impl ParameterCounts {
    /// Counts the trainable variables of `vs` by their first path component.
    pub fn of(vs: &nn::VarStore) -> Self {
        let mut c = Self::default();
        for (name, t) in vs.variables() {
            if !t.requires_grad() {
                continue;
            }
            let n = t.numel() as i64;
            match name.split('.').next().unwrap_or("") {
                "encoder" => c.encoder += n,
                "decoder" => c.decoder += n,
                "segmentation_head" => c.head += n,
                "attention" => c.attention += n,
                "coral" => c.coral += n,
                _ => c.other += n,
            }
        }
        c
    }

    /// The parts smp's `Unet` has: encoder + decoder + class head.
    pub fn smp_total(&self) -> i64 {
        self.encoder + self.decoder + self.head
    }

    pub fn total(&self) -> i64 {
        self.smp_total() + self.attention + self.coral + self.other
    }
}

/// Class probabilities from class logits: softmax over the class dimension.
pub fn class_probabilities(class_logits: &Tensor) -> Tensor {
    class_logits.softmax(1, Kind::Float)
}
