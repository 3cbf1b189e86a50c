//! Where training runs: the CPU or a CUDA GPU, chosen by `compute.device` in config.yaml
//! or `risk-train fit --device`.
//!
//! libtorch registers its CUDA backend from a static initialiser in `libtorch_cuda.so`.
//! Nothing in `risk-train` references that library by symbol, so the linker leaves it out
//! and `tch::Cuda::is_available()` would say false even on a GPU machine. [`load_cuda`]
//! therefore `dlopen`s it once at start-up (`$LIBTORCH/lib/libtorch_cuda.so`, else the
//! library search path and the binary's rpath), with `RTLD_GLOBAL` so that its kernels
//! register. On a machine without a GPU driver or without the CUDA libraries (the lean
//! CPU set-up of `scripts/setup.sh` has `libtorch_cuda.so` but not cuBLAS or cuDNN), the
//! load fails and the reason is reported: `auto` then trains on the CPU and says why,
//! `cuda` stops with that reason as the error.

use std::ffi::{CStr, CString};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use tch::Device;

/// Why a device cannot be used (or named).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// `compute.device` / `--device` is not one of the accepted names.
    #[error("device must be auto, cpu, cuda or cuda:N, got {0:?}")]
    Name(String),
    /// No candidate `libtorch_cuda.so` could be loaded; the loader's message per candidate.
    #[error("libtorch_cuda.so cannot be loaded ({})", .0.join("; "))]
    Load(Vec<String>),
    /// The CUDA backend loaded, but no GPU is visible to it.
    #[error("{} loaded, but libtorch sees no CUDA GPU", .0.display())]
    NoGpu(PathBuf),
    /// An explicit `cuda:N` that cannot be used, and why.
    #[error("device {choice} requested, but {why}")]
    Unusable {
        choice: DeviceChoice,
        why: Box<DeviceError>,
    },
    /// An explicit `cuda:N` beyond the visible GPUs.
    #[error("device {choice} requested, but only {visible} CUDA GPU(s) are visible")]
    Index { choice: DeviceChoice, visible: usize },
}

/// The device a run asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first CUDA GPU when libtorch's CUDA backend loads and sees one, else the CPU.
    Auto,
    Cpu,
    /// CUDA GPU with this index; an error when it cannot be used.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, DeviceError> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse::<usize>().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Name(other.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Loads `libtorch_cuda.so` once; the error says why CUDA cannot be used (the loader's
/// message, or that the library loaded but libtorch sees no GPU).
pub fn load_cuda() -> Result<usize, DeviceError> {
    static LOADED: OnceLock<Result<usize, DeviceError>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let mut candidates = Vec::new();
            if let Some(root) = std::env::var_os("LIBTORCH").filter(|v| !v.is_empty()) {
                candidates.push(std::path::Path::new(&root).join("lib/libtorch_cuda.so"));
            }
            candidates.push("libtorch_cuda.so".into());
            let mut reasons = Vec::new();
            for lib in &candidates {
                match dlopen_global(&lib.to_string_lossy()) {
                    Ok(()) => {
                        let n = tch::Cuda::device_count();
                        return if n > 0 {
                            Ok(n as usize)
                        } else {
                            Err(DeviceError::NoGpu(lib.clone()))
                        };
                    }
                    Err(e) => reasons.push(e),
                }
            }
            Err(DeviceError::Load(reasons))
        })
        .clone()
}

fn dlopen_global(path: &str) -> Result<(), String> {
    let c = CString::new(path).map_err(|_| format!("{path}: NUL in path"))?;
    // SAFETY: a valid C string; the handle is deliberately never closed (the library's
    // registrations must stay for the life of the process). dlerror is read right after.
    unsafe {
        let handle = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
        if handle.is_null() {
            let err = libc::dlerror();
            return Err(if err.is_null() {
                format!("{path}: dlopen failed")
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            });
        }
    }
    Ok(())
}

/// Resolves a choice to a device, and a line for the log that says which one runs and why
/// (with `auto` on a machine without a usable GPU, one plain line: the loader's reason is
/// the error of an explicit `cuda`).
pub fn select(choice: DeviceChoice) -> Result<(Device, String), DeviceError> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, "CPU (as configured)".into())),
        DeviceChoice::Auto => match load_cuda() {
            Ok(n) => Ok((Device::Cuda(0), format!("CUDA GPU 0 of {n}"))),
            // On a CPU machine the loader's reason (a missing cuSPARSE, say) reads as an
            // error although nothing is wrong: one plain line; `device: cuda` prints it.
            Err(_) => Ok((
                Device::Cpu,
                "no GPU found, training on CPU (set device: cuda to see why CUDA is unusable)".into(),
            )),
        },
        DeviceChoice::Cuda(i) => {
            let n = load_cuda().map_err(|why| DeviceError::Unusable {
                choice,
                why: Box::new(why),
            })?;
            if i >= n {
                return Err(DeviceError::Index { choice, visible: n });
            }
            Ok((Device::Cuda(i), format!("CUDA GPU {i} of {n}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!("gpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    }
}
