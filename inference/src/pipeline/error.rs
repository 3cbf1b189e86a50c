//! Errors of one raster's run, and how a failure on one of the run's hidden temporary
//! rasters is told as the output's own (a full disk is the output's problem, not a
//! strange file's).

use std::path::{Path, PathBuf};

use crate::output::TempOutput;
use crate::raster::RasterError;
use crate::session::ModelError;

/// Errors of one raster's run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {msg}")]
    Input { path: PathBuf, msg: String },
    /// A failure on one of the CRF pass's hidden temporary rasters, told as the output's.
    #[error("{0}")]
    Temporary(String),
}

pub type Result<T> = std::result::Result<T, PipelineError>;

impl PipelineError {
    /// An error about the input raster at `path`.
    pub(crate) fn input(path: &Path, msg: String) -> Self {
        Self::Input {
            path: path.to_path_buf(),
            msg,
        }
    }

    /// This error with every mention of one of `temporaries` (and of the hidden name
    /// GDAL's writer gave it) replaced by the output it serves.
    pub(crate) fn for_output(self, temporaries: &[&TempOutput], output: &Path) -> Self {
        let mut text = self.to_string();
        let before = text.clone();
        for t in temporaries {
            let what = format!("{} (temporary CRF input)", output.display());
            // The writer's own temporary of the temporary first, then the temporary itself.
            let inner = crate::output::temp_path_for(t.path(), "tmp");
            text = text.replace(&inner.display().to_string(), &what);
            text = text.replace(&t.path().display().to_string(), &what);
        }
        if text == before {
            self
        } else {
            Self::Temporary(text)
        }
    }
}
