//! Fitting a model's decision rule after training (`risk-train decide`, and `risk-train
//! export --val-image/--val-labels`): the model runs over a validation scene through
//! risk-inference's own pipeline (its tiles, blending and normalisation, exactly as
//! `risk-infer` will run it), the per-class logit offsets are fitted on the blended
//! probabilities against the labels ([`risk_inference::decision::fit`]: best Cohen's kappa
//! with class-2 recall >= 0.93 and class-1 precision >= 0.22, or the stated fallback), and
//! the result is written into the model's ONNX metadata as `risk.decision`.
//!
//! For an ensemble, the rule is fitted on the members' averaged probabilities, as
//! `risk-infer -m A -m B ...` averages them before it applies the first member's rule
//! ([`fit_on_scene`] with several members; `risk-train decide A --with B --with C`).
//!
//! The validation scene must be one that neither training nor testing uses: the offsets
//! are chosen on it, so scores on it are optimistic.

use std::path::{Path, PathBuf};

use prost::Message;
use risk_inference::augment::Tta;
use risk_inference::decision::{self, Fit, Targets};
use risk_inference::pipeline::{self, Outputs, ProbsType, RunOptions};
use risk_inference::predictor::Predictor;
use risk_inference::session::{Device, Model, SessionOptions};

use crate::onnx::proto;

/// Why fitting or writing a decision rule failed; every message names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Model(#[from] risk_inference::session::ModelError),
    #[error(transparent)]
    Run(#[from] pipeline::PipelineError),
    /// The fit's inputs (the probabilities written, the labels) could not be read.
    #[error(transparent)]
    Inputs(decision::DecisionError),
    /// No rule could be fitted on these labels.
    #[error("{}: {err}", labels.display())]
    Fit {
        labels: PathBuf,
        err: decision::DecisionError,
    },
    #[error("{}: cannot read ({err})", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{}: not an ONNX model ({err})", path.display())]
    NotOnnx { path: PathBuf, err: prost::DecodeError },
    #[error("{}: cannot write ({err})", path.display())]
    Write { path: PathBuf, err: std::io::Error },
}

/// Runs the models over `image` (one model, or an ensemble: their probabilities averaged,
/// the first member's tiling) and fits the decision rule against `labels`.
pub fn fit_on_scene(
    models: &[&Path],
    image: &Path,
    labels: &Path,
    targets: &Targets,
) -> Result<Fit, DecideError> {
    let session = SessionOptions {
        device: Device::Cpu,
        ..SessionOptions::default()
    };
    let members = models
        .iter()
        .map(|m| Model::load(m, &session))
        .collect::<Result<Vec<_>, _>>()?;
    let mut predictor = Predictor::new(members, Tta::None, vec![1.0])?;
    let probs = TempPath(risk_inference::raster::temp_path_for(labels, "decide-probs"));
    let outputs = Outputs {
        classes: None,
        probs: Some((probs.0.clone(), ProbsType::F32)),
        uncertainty: None,
    };
    pipeline::run(
        &mut predictor,
        image,
        &outputs,
        &RunOptions::default(),
        &mut |_, _| {},
    )?;
    let (p, truth) = decision::read_fit_inputs(&probs.0, labels).map_err(DecideError::Inputs)?;
    decision::fit(&p, &truth, targets).map_err(|err| DecideError::Fit {
        labels: labels.to_path_buf(),
        err,
    })
}

/// Copies the ONNX model `input` to `output` with metadata `key` set to `value` (replaced
/// if present), through a temporary file renamed into place (`output` may be `input`).
pub fn set_metadata(input: &Path, output: &Path, key: &str, value: &str) -> Result<(), DecideError> {
    let bytes = std::fs::read(input).map_err(|err| DecideError::Read {
        path: input.to_path_buf(),
        err,
    })?;
    let mut model = proto::ModelProto::decode(bytes.as_slice()).map_err(|err| DecideError::NotOnnx {
        path: input.to_path_buf(),
        err,
    })?;
    model.metadata_props.retain(|p| p.key.as_deref() != Some(key));
    model.metadata_props.push(proto::StringStringEntryProto {
        key: Some(key.to_string()),
        value: Some(value.to_string()),
    });
    crate::write_atomic(output, &model.encode_to_vec()).map_err(|err| DecideError::Write {
        path: output.to_path_buf(),
        err,
    })
}

/// A one-line summary of a fit for logs.
pub fn summary(fit: &Fit) -> String {
    let s = |x: &decision::Scores| {
        format!(
            "kappa {:.4}, class-1 precision {:.4}, class-2 recall {:.4}, rho {:.4}, Medium {:.2}%",
            x.kappa,
            x.precision_1,
            x.recall_2,
            x.spearman_rho,
            100.0 * x.medium_share
        )
    };
    format!(
        "{}; {}; on {} validation pixels: rule {} / argmax {}",
        fit.decision.describe(),
        if fit.feasible {
            "targets met".to_string()
        } else {
            format!(
                "targets NOT reachable (class-2 recall >= {}, class-1 precision >= {}); fallback: {}",
                fit.targets.recall_2,
                fit.targets.precision_1,
                fit.fallback.as_deref().unwrap_or("-")
            )
        },
        fit.pixels,
        s(&fit.chosen),
        s(&fit.argmax)
    )
}

/// A temporary file removed when dropped.
struct TempPath(std::path::PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
