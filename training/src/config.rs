//! `config.yaml` of `risk-train fit`: every training parameter of `docs/spec.md` ("Training")
//! with the source's value as default. Unknown keys are errors (`deny_unknown_fields`), so a
//! misspelt key never falls back to a default silently. `training/config.yaml` is the
//! documented default file; [`TrainConfig::from_yaml`] reads one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use risk_inference::classes::NUM_CLASSES;

use crate::data::SamplingConfig;
pub use crate::data::augment::AugmentConfig;
use crate::loss::LossConfig;
use crate::model::UNetConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("config {path}: {err}")]
    Parse { path: PathBuf, err: serde_norway::Error },
    #[error("config {path}: {err}")]
    Invalid { path: PathBuf, err: InvalidConfig },
}

/// A value that parses but cannot be used (what [`TrainConfig::validate`] checks); the
/// message names the field as config.yaml spells it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidConfig {
    #[error("data.image and data.labels are required")]
    MissingInputs,
    #[error("data.tile must be a positive multiple of 32, got {0}")]
    Tile(usize),
    #[error("model.attention_window must be 0 or a multiple of 32, got {0}")]
    AttentionWindow(usize),
    #[error("data.stride must be positive")]
    Stride,
    #[error(
        "data.bands ({bands}), data.mean ({mean}) and data.std ({std}) must have the same, non-zero length"
    )]
    BandLengths { bands: usize, mean: usize, std: usize },
    #[error("data.std and data.scale must be positive")]
    Scale,
    #[error("data.block_tiles must be >= 1 and val_fraction + test_fraction < 1")]
    Split,
    #[error("loss.alpha needs {NUM_CLASSES} class weights, got {0}")]
    Alpha(usize),
    #[error("optim.batch_size, optim.epochs and optim.lr must be positive")]
    Optim,
    #[error("model.head_dropout must be in [0, 1)")]
    HeadDropout,
    #[error("model.bn_momentum must be in (0, 1]")]
    BnMomentum,
    #[error("compute.{0}")]
    Device(#[from] crate::device::DeviceError),
}

/// Which EfficientNet encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderName {
    /// EfficientNet-B0, decoder (128, 64, 32, 16, 8): the edge model.
    B0,
    /// EfficientNet-B4, decoder (256, 128, 64, 32, 16): the source's model.
    B4,
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `lr * (1 + cos(pi * epoch / epochs)) / 2`.
    Cosine,
    /// Halve the learning rate after `plateau_patience` epochs without a better val loss.
    Plateau,
    /// Constant learning rate.
    Constant,
}

/// Input rasters and tiling (`data:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Image raster (GeoTIFF or anything GDAL opens). Relative paths are relative to the
    /// config file. Required.
    pub image: PathBuf,
    /// Label raster (0/1/2, 255 nodata), same grid as the image. Required.
    pub labels: PathBuf,
    /// Image bands (1-based) fed to the model. Default `[1, 2, 3]`.
    pub bands: Vec<usize>,
    /// Tile side in pixels (multiple of 32). Default 1024 (768 as the memory fallback).
    pub tile: usize,
    /// Distance between tile origins in pixels. Default: the tile side (no overlap).
    pub stride: Option<usize>,
    /// Side of a spatial block of the train/val/test split, in tiles. Default 4.
    pub block_tiles: usize,
    /// Share of blocks in validation. Default 0.15.
    pub val_fraction: f64,
    /// Share of blocks in the test split. Default 0.15.
    pub test_fraction: f64,
    /// Pixel values are divided by this first. Default 255 (uint8 imagery).
    pub scale: f64,
    /// Per-band mean after scaling. Default ImageNet RGB `[0.485, 0.456, 0.406]`.
    pub mean: Vec<f64>,
    /// Per-band standard deviation after scaling. Default `[0.229, 0.224, 0.225]`.
    pub std: Vec<f64>,
    /// Tiles with less than this share of labelled pixels are left out. Default 0.05.
    pub min_labelled: f64,
    /// More scenes (image / label pairs, same bands), each wholly in one split: training
    /// on several scenes, validating and testing on scenes (seeds) it never saw. The
    /// `image` / `labels` scene is split by blocks as above (set `val_fraction` and
    /// `test_fraction` to 0 to train on all of it). Default none.
    pub scenes: Vec<SceneConfig>,
}

/// One more scene of `data.scenes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneConfig {
    /// Image raster; relative to the config file.
    pub image: PathBuf,
    /// Label raster on the image's grid; relative to the config file.
    pub labels: PathBuf,
    /// `train`, `val` or `test`: where all of its tiles go.
    pub split: crate::data::split::Split,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            image: PathBuf::new(),
            labels: PathBuf::new(),
            bands: vec![1, 2, 3],
            tile: 1024,
            stride: None,
            block_tiles: 4,
            val_fraction: 0.15,
            test_fraction: 0.15,
            scale: 255.0,
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            min_labelled: 0.05,
            scenes: Vec::new(),
        }
    }
}

/// Network (`model:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `b4` (default) or `b0`.
    pub encoder: EncoderName,
    /// CBAM on the deepest encoder features. Default true.
    pub attention: bool,
    /// CBAM's channel pools over windows of this many pixels (a multiple of 32) instead
    /// of the whole tile, so that the model sees the same on tiles larger than it was
    /// trained on. Default 0 (the whole tile: the source's CBAM).
    pub attention_window: usize,
    /// Dropout2d before the class conv. Default 0.4.
    pub head_dropout: f64,
    /// smp / efficientnet_pytorch safetensors weights to start from (`--init-weights`).
    /// Default none (random initialisation).
    pub init_weights: Option<PathBuf>,
    /// Momentum of the encoder's BatchNorm running statistics (PyTorch convention).
    /// Default 0.01 (`efficientnet_pytorch`, for runs from ImageNet weights); 0.1 for short
    /// runs from random weights, whose running statistics must keep up with the weights.
    pub bn_momentum: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            encoder: EncoderName::B4,
            attention: true,
            attention_window: 0,
            head_dropout: 0.4,
            init_weights: None,
            bn_momentum: crate::model::encoder::BN_MOMENTUM,
        }
    }
}

/// Optimiser and loop (`optim:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// AdamW learning rate. Default 1e-4 (5e-5 if training diverges).
    pub lr: f64,
    /// AdamW weight decay. Default 1e-2.
    pub weight_decay: f64,
    /// `cosine` (default), `plateau` or `constant`.
    pub schedule: Schedule,
    /// Epochs without improvement before a plateau halving. Default 5.
    pub plateau_patience: usize,
    /// Epochs. Default 60.
    pub epochs: usize,
    /// Early stopping: epochs without a better validation loss. Default 15.
    pub patience: usize,
    /// Tiles per batch. Default 4.
    pub batch_size: usize,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            weight_decay: 1e-2,
            schedule: Schedule::Cosine,
            plateau_patience: 5,
            epochs: 60,
            patience: 15,
            batch_size: 4,
        }
    }
}

/// Numeric precision of training (`compute.precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float32 throughout.
    Fp32,
    /// Mixed precision on CUDA: the forward pass and the loss under libtorch's autocast
    /// (float16 where safe), float32 weights and optimiser state, dynamic loss scaling
    /// (`optim::LossScaler`). On the CPU it falls back to fp32 and says so.
    Fp16,
    /// Mixed precision with bfloat16 (float32's exponent range, so no loss scaling), on
    /// CUDA or the CPU ([`crate::amp`]).
    Bf16,
}

/// Where and how precisely to train (`compute:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeConfig {
    /// `auto` (default: CUDA GPU 0 when libtorch's CUDA backend loads, else the CPU),
    /// `cpu`, `cuda` or `cuda:N`. `risk-train fit --device` overrides it.
    pub device: String,
    /// `fp32` (default), `fp16` (mixed precision, CUDA only) or `bf16` (mixed precision,
    /// CUDA or CPU).
    pub precision: Precision,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            device: "auto".into(),
            precision: Precision::Fp32,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub loss: LossConfig,
    pub sampling: SamplingConfig,
    pub augment: AugmentConfig,
    pub optim: OptimConfig,
    pub compute: ComputeConfig,
    /// Seed of initialisation, split, shuffling and augmentation. Default 42.
    pub seed: u64,
    /// Run folder (checkpoints, log). Default `runs/risk`; relative to the config file.
    pub out: PathBuf,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: DataConfig::default(),
            model: ModelConfig::default(),
            loss: LossConfig::default(),
            sampling: SamplingConfig::default(),
            augment: AugmentConfig::default(),
            optim: OptimConfig::default(),
            compute: ComputeConfig::default(),
            seed: 42,
            out: PathBuf::from("runs/risk"),
        }
    }
}

impl TrainConfig {
    /// Reads and checks a YAML file; relative paths in it are resolved against its folder.
    pub fn from_yaml(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.to_path_buf(),
            err,
        })?;
        let mut cfg = Self::from_yaml_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            err,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let scene_paths = cfg
            .data
            .scenes
            .iter_mut()
            .flat_map(|s| [&mut s.image, &mut s.labels]);
        for p in [&mut cfg.data.image, &mut cfg.data.labels, &mut cfg.out]
            .into_iter()
            .chain(scene_paths)
        {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        }
        if let Some(w) = cfg.model.init_weights.as_mut().filter(|w| w.is_relative()) {
            *w = base.join(&*w);
        }
        cfg.validate().map_err(|err| ConfigError::Invalid {
            path: path.to_path_buf(),
            err,
        })?;
        Ok(cfg)
    }

    /// Parses YAML text (no path resolution, no checks).
    pub fn from_yaml_str(text: &str) -> Result<Self, serde_norway::Error> {
        serde_norway::from_str(text)
    }

    /// Checks what serde cannot: value ranges and consistent lengths.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        use InvalidConfig as E;
        let (d, m, o) = (&self.data, &self.model, &self.optim);
        // Each failing condition and what it reports, in the order they are checked.
        let failures = [
            (
                d.image.as_os_str().is_empty() || d.labels.as_os_str().is_empty(),
                E::MissingInputs,
            ),
            (d.tile == 0 || !d.tile.is_multiple_of(32), E::Tile(d.tile)),
            (
                !m.attention_window.is_multiple_of(32),
                E::AttentionWindow(m.attention_window),
            ),
            (d.stride == Some(0), E::Stride),
            (
                d.bands.is_empty() || d.mean.len() != d.bands.len() || d.std.len() != d.bands.len(),
                E::BandLengths {
                    bands: d.bands.len(),
                    mean: d.mean.len(),
                    std: d.std.len(),
                },
            ),
            (d.std.iter().any(|&s| s <= 0.0) || d.scale <= 0.0, E::Scale),
            (
                d.block_tiles == 0
                    || d.val_fraction < 0.0
                    || d.test_fraction < 0.0
                    || d.val_fraction + d.test_fraction >= 1.0,
                E::Split,
            ),
            (
                self.loss.alpha.len() != NUM_CLASSES,
                E::Alpha(self.loss.alpha.len()),
            ),
            (o.batch_size == 0 || o.epochs == 0 || o.lr <= 0.0, E::Optim),
            (!(0.0..1.0).contains(&m.head_dropout), E::HeadDropout),
            (!(m.bn_momentum > 0.0 && m.bn_momentum <= 1.0), E::BnMomentum),
        ];
        if let Some((_, err)) = failures.into_iter().find(|(failed, _)| *failed) {
            return Err(err);
        }
        self.device_choice()?;
        Ok(())
    }

    /// The network this config describes.
    pub fn unet(&self) -> UNetConfig {
        let mut base = match self.model.encoder {
            EncoderName::B0 => UNetConfig::b0(),
            EncoderName::B4 => UNetConfig::b4(),
        };
        base.encoder.bn_momentum = self.model.bn_momentum;
        UNetConfig {
            in_channels: self.data.bands.len() as i64,
            attention: self.model.attention,
            attention_window: self.model.attention_window as i64,
            head_dropout: self.model.head_dropout,
            ..base
        }
    }

    /// `compute.device` parsed.
    pub fn device_choice(&self) -> Result<crate::device::DeviceChoice, crate::device::DeviceError> {
        self.compute.device.parse()
    }

    /// Tile stride (the tile side unless set).
    pub fn stride(&self) -> usize {
        self.data.stride.unwrap_or(self.data.tile)
    }
}
