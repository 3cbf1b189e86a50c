//! The attention U-Net of `docs/spec.md` ("Model"): an EfficientNet encoder, a CBAM attention
//! module on the deepest features, the smp U-Net decoder and two heads (class logits and
//! CORAL ordinal logits).
//!
//! Data flow of [`RiskUNet::forward_t`] for an `(N, C, H, W)` input (H, W multiples of 32):
//!
//! ```text
//! encoder::Encoder   -> [x, f/2, f/4, f/8, f/16, f/32]   6 scales, channels EncoderConfig::skip_channels
//! attention::Cbam    -> f/32 rescaled (optional, `attention: true`)
//! decoder::Decoder   -> (N, 16, H, W) (8 for B0): 5 x (nearest x2, concat skip, 2 x conv-BN-ReLU)
//! unet::ClassHead    -> (N, 3, H, W) class logits (Dropout2d 0.4, conv 3x3)
//! unet::CoralHead    -> (N, 2, H, W) ordinal logits for P(y > 0), P(y > 1)
//! ```
//!
//! Variable-store paths are the names of the PyTorch state dict of smp
//! `Unet("efficientnet-b4")` (`encoder._blocks.3._expand_conv.weight`,
//! `decoder.blocks.0.conv1.0.weight`, `segmentation_head.0.weight`), so that [`weights`]
//! imports a PyTorch checkpoint by name. The parts without an smp counterpart live under
//! `attention.*` and `coral.*`.

pub mod attention;
pub mod decoder;
pub mod encoder;
pub mod unet;
pub mod weights;

pub use attention::Cbam;
pub use decoder::Decoder;
pub use encoder::{BlockConfig, Encoder, EncoderConfig, StaticPad};
pub use unet::{ParameterCounts, RiskUNet, UNetConfig, UNetOutput};
pub use weights::{ImportReport, WeightError, import_safetensors, import_tensors};
