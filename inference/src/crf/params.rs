//! What the dense CRF is asked to do: its kernel widths and weights ([`CrfParams`], with
//! the source's two presets) and the label compatibility of both kernels
//! ([`LabelCompat`]: Potts, ordinal, or any 3x3 cost matrix), as pydensecrf names them.

use super::error::CrfError;

/// Number of labels: the risk classes (Low, Medium, High).
pub const LABELS: usize = crate::classes::NUM_CLASSES;

/// Label compatibility of both kernels (pydensecrf's `compat` argument).
///
/// - `Potts` (the default, pydensecrf's `PottsCompatibility(w)`): every disagreement costs
///   the kernel's weight `w`, whichever the two labels.
/// - `Ordinal`: the cost grows with the distance of the ordinal labels, `w |i - j|`, so a
///   Low pixel beside a High one costs twice what either costs beside a Medium one, and a
///   thin Medium band between Low and High is cheaper to keep than to erase.
/// - `Matrix(C)`: any 3x3 cost matrix, the kernel's compatibility being `w C`.
///
/// `Ordinal` and `Matrix` are pydensecrf's `MatrixCompatibility(w C)` (passing the 2-d array
/// `w C` as `compat`): the matrix is symmetrised, `(M + M^T) / 2`, and the pairwise energy of
/// label `i` is `sum_j M_ij (norm K Q)_j`. `Matrix` of `1 - I` is Potts (the two differ by a
/// term equal for every label of a pixel, which the softmax cancels).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelCompat {
    #[default]
    Potts,
    Ordinal,
    Matrix([[f32; LABELS]; LABELS]),
}

impl LabelCompat {
    /// `potts`, `ordinal`, or nine comma-separated numbers (the cost matrix, row by row).
    pub fn parse(s: &str) -> Result<Self, CrfError> {
        match s.trim() {
            "potts" => Ok(Self::Potts),
            "ordinal" => Ok(Self::Ordinal),
            list => {
                let v: Vec<f32> = list
                    .split(',')
                    .map(|x| x.trim().parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| CrfError::CompatNotParsed { text: s.to_owned() })?;
                if v.len() != LABELS * LABELS || v.iter().any(|x| !x.is_finite()) {
                    return Err(CrfError::CompatMatrix {
                        text: s.to_owned(),
                        got: v.len(),
                    });
                }
                Ok(Self::Matrix(std::array::from_fn(|i| {
                    std::array::from_fn(|j| v[i * LABELS + j])
                })))
            }
        }
    }

    /// The cost matrix `C` (`Potts`: `None`, handled as pydensecrf's Potts term).
    pub fn costs(&self) -> Option<[[f32; LABELS]; LABELS]> {
        match self {
            Self::Potts => None,
            Self::Ordinal => Some(std::array::from_fn(|i| {
                std::array::from_fn(|j| (i as f32 - j as f32).abs())
            })),
            Self::Matrix(m) => Some(*m),
        }
    }

    /// The symmetrised compatibility of a kernel of weight `w`: `w (C + C^T) / 2`, as
    /// pydensecrf's `MatrixCompatibility` stores it (float32 throughout).
    pub fn kernel_matrix(&self, w: f32) -> Option<[[f32; LABELS]; LABELS]> {
        let c = self.costs()?;
        let m: [[f32; LABELS]; LABELS] = std::array::from_fn(|i| std::array::from_fn(|j| w * c[i][j]));
        Some(std::array::from_fn(|i| {
            std::array::from_fn(|j| 0.5f32 * (m[i][j] + m[j][i]))
        }))
    }
}

impl std::str::FromStr for LabelCompat {
    type Err = CrfError;

    /// As [`LabelCompat::parse`].
    fn from_str(s: &str) -> Result<Self, CrfError> {
        Self::parse(s)
    }
}

impl std::fmt::Display for LabelCompat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Potts => f.write_str("potts"),
            Self::Ordinal => f.write_str("ordinal"),
            Self::Matrix(m) => write!(f, "matrix {m:?}"),
        }
    }
}

/// Dense CRF parameters (pydensecrf names in brackets). Both kernels use `DIAG_KERNEL`,
/// `NORMALIZE_SYMMETRIC` and the label compatibility [`CrfParams::compat`] (Potts unless set).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrfParams {
    /// Mean-field iterations. Default 5 (`default`), 8 (`enhanced`).
    pub iterations: usize,
    /// Gaussian kernel width in pixels (`sxy`). Default 3.
    pub gaussian_sxy: f32,
    /// Gaussian kernel Potts weight (`compat`). Default 3 (`default`), 5 (`enhanced`).
    pub gaussian_compat: f32,
    /// Bilateral kernel spatial width in pixels (`sxy`). Default 80.
    pub bilateral_sxy: f32,
    /// Bilateral kernel colour width in 8-bit RGB units (`srgb`). Default 13.
    pub bilateral_srgb: f32,
    /// Bilateral kernel Potts weight (`compat`). Default 10 (`default`), 15 (`enhanced`).
    pub bilateral_compat: f32,
    /// Label compatibility of both kernels, scaled by each kernel's weight. Default Potts.
    #[serde(default)]
    pub compat: LabelCompat,
}

impl CrfParams {
    /// Source V2 settings: 5 iterations, Gaussian 3 / 3, bilateral 80 / 13 / 10.
    pub const DEFAULT: CrfParams = CrfParams {
        iterations: 5,
        gaussian_sxy: 3.0,
        gaussian_compat: 3.0,
        bilateral_sxy: 80.0,
        bilateral_srgb: 13.0,
        bilateral_compat: 10.0,
        compat: LabelCompat::Potts,
    };

    /// Source V2.5 settings: 8 iterations, Gaussian compat 5 (the source's
    /// `spatial_weight` = `compat_spatial` = 5), bilateral compat 15; same widths.
    pub const ENHANCED: CrfParams = CrfParams {
        iterations: 8,
        gaussian_compat: 5.0,
        bilateral_compat: 15.0,
        ..CrfParams::DEFAULT
    };

    /// `"default"` or `"enhanced"`.
    pub fn preset(name: &str) -> Result<CrfParams, CrfError> {
        match name {
            "default" => Ok(Self::DEFAULT),
            "enhanced" => Ok(Self::ENHANCED),
            other => Err(CrfError::UnknownPreset(other.to_owned())),
        }
    }

    /// Checks that widths are positive and weights finite.
    pub fn validate(&self) -> Result<(), CrfError> {
        let positive = [
            ("gaussian_sxy", self.gaussian_sxy),
            ("bilateral_sxy", self.bilateral_sxy),
            ("bilateral_srgb", self.bilateral_srgb),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(CrfError::BadParam {
                    name,
                    value: v as f64,
                    reason: "must be a positive number",
                });
            }
        }
        if let LabelCompat::Matrix(m) = &self.compat
            && let Some(&v) = m.iter().flatten().find(|v| !v.is_finite())
        {
            return Err(CrfError::BadParam {
                name: "compat",
                value: v as f64,
                reason: "must be finite",
            });
        }
        for (name, v) in [
            ("gaussian_compat", self.gaussian_compat),
            ("bilateral_compat", self.bilateral_compat),
        ] {
            if !v.is_finite() {
                return Err(CrfError::BadParam {
                    name,
                    value: v as f64,
                    reason: "must be finite",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_compatibility_parses_and_symmetrises_as_pydensecrf() {
        assert_eq!(LabelCompat::parse("potts"), Ok(LabelCompat::Potts));
        assert_eq!(LabelCompat::parse("ordinal"), Ok(LabelCompat::Ordinal));
        assert_eq!(LabelCompat::Potts.kernel_matrix(3.0), None);
        // Ordinal: w |i - j|.
        assert_eq!(
            LabelCompat::Ordinal.kernel_matrix(2.0),
            Some([[0.0, 2.0, 4.0], [2.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
        );
        // An asymmetric matrix becomes w (C + C^T) / 2.
        let c = LabelCompat::parse("0, 1, 3, 0.5, 0, 1, 2, 2, 0").unwrap();
        assert_eq!(
            c.kernel_matrix(2.0),
            Some([[0.0, 1.5, 5.0], [1.5, 0.0, 3.0], [5.0, 3.0, 0.0]])
        );
        for bad in ["", "pots", "1,2,3", "0,1,1,1,0,1,1,1,0,1", "0,1,1,1,0,1,1,1,nan"] {
            assert!(LabelCompat::parse(bad).is_err(), "{bad:?}");
        }
    }
}
