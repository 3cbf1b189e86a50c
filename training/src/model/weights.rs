//! Weight import by name: a safetensors file whose tensor names follow the PyTorch state
//! dict of smp `Unet` (`encoder._blocks.3._expand_conv.weight`, ...) is copied into the
//! variable store of a [`crate::model::RiskUNet`] (`risk-train --init-weights FILE`).
//!
//! Rules:
//! - every file tensor must name a model variable of the same shape; every model variable
//!   must be in the file, except those under [`MODEL_ONLY_PREFIXES`] (`attention.*`,
//!   `coral.*`: no smp counterpart), which keep their initialisation and are reported;
//! - `*.num_batches_tracked` (PyTorch's BatchNorm step counter, unused with a fixed
//!   momentum and absent from tch) is skipped;
//! - on any mismatch nothing is copied and [`WeightError::Mismatch`] lists the missing,
//!   unexpected and mis-shaped tensors;
//! - values are converted to the variable's dtype and device.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use tch::{TchError, Tensor, nn};

/// Model variables that an smp state dict does not have.
pub const MODEL_ONLY_PREFIXES: [&str; 2] = ["attention.", "coral."];

/// How many names of each kind the error message shows.
const SHOWN: usize = 12;

/// A tensor present in both, with different shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub name: String,
    pub model: Vec<i64>,
    pub file: Vec<i64>,
}

/// Why a file does not fit the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mismatch {
    /// Model variables the file lacks.
    pub missing: Vec<String>,
    /// File tensors the model has no variable for.
    pub unexpected: Vec<String>,
    pub mis_shaped: Vec<ShapeMismatch>,
}

impl Mismatch {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mis_shaped.is_empty()
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, what: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(
        f,
        "; {} {what}: {}",
        items.len(),
        items[..items.len().min(SHOWN)].join(", ")
    )?;
    if items.len() > SHOWN {
        write!(f, ", ... ({} more)", items.len() - SHOWN)?;
    }
    Ok(())
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} missing, {} unexpected, {} mis-shaped",
            self.missing.len(),
            self.unexpected.len(),
            self.mis_shaped.len()
        )?;
        write_list(f, "missing (in the model, not in the file)", &self.missing)?;
        write_list(f, "unexpected (in the file, not in the model)", &self.unexpected)?;
        let shapes: Vec<String> = self
            .mis_shaped
            .iter()
            .map(|m| format!("{} (model {:?}, file {:?})", m.name, m.model, m.file))
            .collect();
        write_list(f, "mis-shaped", &shapes)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("cannot read weights from {path}: {err}")]
    Read { path: PathBuf, err: TchError },
    #[error(
        "weights from {source_name} do not fit the model ({mismatch}); check the encoder (b0/b4), the decoder channels and the input bands"
    )]
    Mismatch { source_name: String, mismatch: Mismatch },
    #[error("cannot copy {name} from {source_name}: {err}")]
    Copy {
        source_name: String,
        name: String,
        err: TchError,
    },
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Variables overwritten from the file.
    pub loaded: usize,
    /// Model-only variables (`attention.*`, `coral.*`) left at their initialisation.
    pub kept_init: Vec<String>,
    /// File tensors skipped on purpose (`*.num_batches_tracked`).
    pub skipped: Vec<String>,
}

/// Reads `path` (safetensors) and imports it into `vs`; see the module docs.
pub fn import_safetensors(vs: &nn::VarStore, path: &Path) -> Result<ImportReport, WeightError> {
    let tensors = Tensor::read_safetensors(path).map_err(|err| WeightError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    import_tensors(vs, tensors, &path.display().to_string())
}

/// Imports named tensors into `vs`; `source_name` names them in errors (a file path).
pub fn import_tensors(
    vs: &nn::VarStore,
    tensors: Vec<(String, Tensor)>,
    source_name: &str,
) -> Result<ImportReport, WeightError> {
    let vars = vs.variables();
    let mut report = ImportReport::default();
    let mut mismatch = Mismatch::default();
    let mut matched: Vec<(String, Tensor, Tensor)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, src) in tensors {
        if name.ends_with(".num_batches_tracked") {
            report.skipped.push(name);
            continue;
        }
        match vars.get(&name) {
            Some(var) if var.size() == src.size() => {
                seen.insert(name.clone());
                matched.push((name, var.shallow_clone(), src));
            }
            Some(var) => {
                seen.insert(name.clone());
                mismatch.mis_shaped.push(ShapeMismatch {
                    name,
                    model: var.size(),
                    file: src.size(),
                });
            }
            None => mismatch.unexpected.push(name),
        }
    }
    let model_only: HashMap<&String, bool> = vars
        .keys()
        .map(|n| (n, MODEL_ONLY_PREFIXES.iter().any(|p| n.starts_with(p))))
        .collect();
    for (name, only) in model_only {
        if seen.contains(name) {
            continue;
        }
        if only {
            report.kept_init.push(name.clone());
        } else {
            mismatch.missing.push(name.clone());
        }
    }
    mismatch.missing.sort();
    mismatch.unexpected.sort();
    mismatch.mis_shaped.sort_by(|a, b| a.name.cmp(&b.name));
    report.kept_init.sort();
    if !mismatch.is_empty() {
        return Err(WeightError::Mismatch {
            source_name: source_name.to_string(),
            mismatch,
        });
    }
    tch::no_grad(|| {
        for (name, mut var, src) in matched {
            let src = src.to_kind(var.kind()).to_device(var.device());
            var.f_copy_(&src).map_err(|err| WeightError::Copy {
                source_name: source_name.to_string(),
                name,
                err,
            })?;
            report.loaded += 1;
        }
        Ok(report)
    })
}
