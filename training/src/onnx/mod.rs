//! ONNX export of the trained model (issue 7), written directly as protobuf:
//!
//! - `onnx.proto` (vendored from the onnx 1.23.2 wheel) is compiled by `build.rs`
//!   (prost-build + protox) into [`proto`];
//! - [`writer`]: one small function per layer kind appending ONNX nodes and initialisers;
//! - [`export`]: the walk over the model (BatchNorm folded into convolutions);
//! - [`export_model`] / [`write_model`]: opset 17, IR version 8, input `image`
//!   `(N, C, H, W)` with dynamic N, H, W, outputs `probs` (softmax in the graph) and
//!   `ordinal` (CORAL probabilities), `risk.*` metadata properties per the model contract
//!   of `inference/src/session.rs`.

pub mod export;
pub mod writer;

/// The ONNX protobuf types generated from `onnx.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use tch::nn;

use crate::model::UNetConfig;
use crate::model::unet::CLASSES;
use writer::GraphWriter;

/// ONNX IR version written (supported by every ONNX Runtime since 1.10).
pub const IR_VERSION: i64 = 8;
/// Default-domain operator set.
pub const OPSET: i64 = 17;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("the variable store has no variable `{0}`")]
    MissingVariable(String),
    #[error("tensor conversion: {0}")]
    Tensor(String),
    #[error("{path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
}

/// Export settings: float16 graph and the `risk.*` metadata properties.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    pub fp16: bool,
    /// Metadata properties (key -> value); see [`default_metadata`].
    pub metadata: BTreeMap<String, String>,
}

/// The contract's metadata with its defaults for `cfg` (RGB bands, 1/255 scaling,
/// ImageNet mean/std as the smp encoders expect, 512 px tiles with 64 px overlap, no CRF).
pub fn default_metadata(cfg: &UNetConfig) -> BTreeMap<String, String> {
    let bands: Vec<String> = (1..=cfg.in_channels).map(|b| b.to_string()).collect();
    let pick = |v: [f32; 4]| {
        (0..cfg.in_channels as usize)
            .map(|i| v[i.min(3)].to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let entries = [
        ("risk.bands", bands.join(",")),
        ("risk.scale", (1.0f32 / 255.0).to_string()),
        ("risk.mean", pick([0.485, 0.456, 0.406, 0.5])),
        ("risk.std", pick([0.229, 0.224, 0.225, 0.25])),
        ("risk.class_names", "Low,Medium,High".into()),
        ("risk.tile_size", "512".into()),
        ("risk.tile_overlap", "64".into()),
        ("risk.crf", "off".into()),
        (
            "risk.model_version",
            format!("{} attention U-Net", cfg.encoder.name),
        ),
    ];
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Builds the ONNX model of `vs` (a [`crate::model::RiskUNet`] built with `cfg`).
pub fn export_model(
    vs: &nn::VarStore,
    cfg: &UNetConfig,
    options: &ExportOptions,
) -> Result<proto::ModelProto, OnnxError> {
    let mut g = GraphWriter::new(options.fp16);
    export::build_graph(&mut g, vs, cfg)?;
    let graph = proto::GraphProto {
        name: Some("risk_unet".into()),
        input: vec![g.nchw_value("image", cfg.in_channels)],
        output: vec![
            g.nchw_value("probs", CLASSES),
            g.nchw_value("ordinal", CLASSES - 1),
        ],
        node: std::mem::take(&mut g.nodes),
        initializer: std::mem::take(&mut g.initializers),
        ..Default::default()
    };
    let metadata_props = options
        .metadata
        .iter()
        .map(|(k, v)| proto::StringStringEntryProto {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect();
    Ok(proto::ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("risk-train".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        metadata_props,
        ..Default::default()
    })
}

/// [`export_model`] and write the serialised model to `path` (through a temporary file
/// renamed into place).
pub fn write_model(
    vs: &nn::VarStore,
    cfg: &UNetConfig,
    options: &ExportOptions,
    path: &Path,
) -> Result<(), OnnxError> {
    let model = export_model(vs, cfg, options)?;
    crate::write_atomic(path, &model.encode_to_vec()).map_err(|err| OnnxError::Write {
        path: path.to_path_buf(),
        err,
    })
}
