//! Mixed precision: libtorch's autocast for a device type and a low-precision dtype, as
//! `torch.autocast(device_type, dtype)` in Python.
//!
//! Inside [`autocast`], the ops that autocast lists (convolutions, matmuls) run in the
//! chosen dtype, the numerically sensitive ones (softmax, log, losses, reductions) in
//! float32; weights, gradients and optimiser state stay float32.
//!
//! | `compute.precision` | device | dtype | loss scaling |
//! | --- | --- | --- | --- |
//! | `fp16` | CUDA only | float16 | yes ([`crate::optim::LossScaler`]): float16 gradients underflow |
//! | `bf16` | CUDA or CPU | bfloat16 | no: bfloat16 has float32's exponent range |
//!
//! tch 0.24 wraps only the old CUDA-only, float16-only switch (`tch::autocast`). The
//! device-typed API of ATen (`at::autocast::set_autocast_enabled(DeviceType, bool)`,
//! `set_autocast_dtype(DeviceType, ScalarType)`, both exported by `libtorch_cpu.so`) is
//! therefore looked up by its C++ symbol name at first use. Their arguments are one-byte
//! enums (`c10::DeviceType`, `c10::ScalarType`) and a bool, which the x86-64 and AArch64
//! C++ ABIs pass exactly as C passes `i8` and `bool`. A libtorch without these symbols
//! makes [`autocast`] fail with a message, not crash.

use std::ffi::CStr;
use std::sync::OnceLock;

use tch::{Device, Kind};

/// Why autocast cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmpError {
    /// The linked libtorch lacks one of ATen's autocast functions (its C++ symbol name).
    #[error("this libtorch has no {0} (needed for mixed precision)")]
    MissingSymbol(String),
    /// A device type autocast has no mode for.
    #[error("autocast is not supported on {0}")]
    Device(String),
    /// A kind other than Half or BFloat16.
    #[error("autocast dtype must be Half or BFloat16, not {0}")]
    Dtype(String),
    /// ATen reported a `c10::ScalarType` code this module does not know.
    #[error("unexpected autocast dtype {0}")]
    UnknownDtype(i8),
}

type SetEnabled = unsafe extern "C" fn(device_type: i8, enabled: bool);
type IsEnabled = unsafe extern "C" fn(device_type: i8) -> bool;
type SetDtype = unsafe extern "C" fn(device_type: i8, dtype: i8);
type GetDtype = unsafe extern "C" fn(device_type: i8) -> i8;
type Nesting = unsafe extern "C" fn() -> i64;
type ClearCache = unsafe extern "C" fn();

struct Api {
    set_enabled: SetEnabled,
    is_enabled: IsEnabled,
    set_dtype: SetDtype,
    get_dtype: GetDtype,
    increment_nesting: Nesting,
    decrement_nesting: Nesting,
    clear_cache: ClearCache,
}

/// ATen's device-typed autocast functions, looked up once.
fn api() -> Result<&'static Api, AmpError> {
    static API: OnceLock<Result<Api, AmpError>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: the symbols are the ATen functions whose signatures the types above spell
        // in C terms (module docs); `sym` gives each the type of its field.
        unsafe {
            Ok(Api {
                set_enabled: sym(c"_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb")?,
                is_enabled: sym(c"_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE")?,
                set_dtype: sym(c"_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE")?,
                get_dtype: sym(c"_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE")?,
                increment_nesting: sym(c"_ZN2at8autocast17increment_nestingEv")?,
                decrement_nesting: sym(c"_ZN2at8autocast17decrement_nestingEv")?,
                clear_cache: sym(c"_ZN2at8autocast11clear_cacheEv")?,
            })
        }
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The function `name` among the loaded libraries (libtorch_cpu is linked), as the
/// function pointer type `F`.
///
/// # Safety
/// `F` must be an `extern "C"` function pointer type matching the symbol's signature.
unsafe fn sym<F: Copy>(name: &CStr) -> Result<F, AmpError> {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut libc::c_void>());
    // SAFETY: dlsym with a valid C string.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if p.is_null() {
        return Err(AmpError::MissingSymbol(name.to_string_lossy().into_owned()));
    }
    // SAFETY: a non-null function address read as the pointer type the caller vouches for.
    Ok(unsafe { std::mem::transmute_copy::<*mut libc::c_void, F>(&p) })
}

/// `c10::DeviceType` of a device (CPU 0, CUDA 1).
fn device_type(device: Device) -> Result<i8, AmpError> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => Err(AmpError::Device(format!("{other:?}"))),
    }
}

/// `c10::ScalarType` codes of the kinds autocast uses.
const SCALAR_HALF: i8 = 5;
const SCALAR_FLOAT: i8 = 6;
const SCALAR_BFLOAT16: i8 = 15;

/// `c10::ScalarType` of the low-precision kinds autocast takes.
fn scalar_type(kind: Kind) -> Result<i8, AmpError> {
    match kind {
        Kind::Half => Ok(SCALAR_HALF),
        Kind::BFloat16 => Ok(SCALAR_BFLOAT16),
        other => Err(AmpError::Dtype(format!("{other:?}"))),
    }
}

/// The dtype autocast uses on `device` now (float16 for CUDA, bfloat16 for the CPU unless set).
pub fn dtype(device: Device) -> Result<Kind, AmpError> {
    let api = api()?;
    // SAFETY: as in `api`.
    match unsafe { (api.get_dtype)(device_type(device)?) } {
        SCALAR_HALF => Ok(Kind::Half),
        SCALAR_BFLOAT16 => Ok(Kind::BFloat16),
        SCALAR_FLOAT => Ok(Kind::Float),
        other => Err(AmpError::UnknownDtype(other)),
    }
}

/// Runs `f` under autocast on `device`'s type with `kind` (Half or BFloat16) when `amp` is
/// `Some((device, kind))`, plainly when `None`. The previous autocast state (enabled flag
/// and dtype of that device type) is restored afterwards, also when `f` panics, and the
/// cache of weights cast to the low dtype is cleared when the outermost autocast region
/// ends, as in PyTorch.
pub fn autocast<T>(amp: Option<(Device, Kind)>, f: impl FnOnce() -> T) -> Result<T, AmpError> {
    let Some((device, kind)) = amp else {
        return Ok(f());
    };
    let (api, dt, st) = (api()?, device_type(device)?, scalar_type(kind)?);
    // SAFETY: as in `api`; the calls only flip ATen's thread-local autocast state.
    let (was_enabled, was_dtype) = unsafe { ((api.is_enabled)(dt), (api.get_dtype)(dt)) };
    // SAFETY: as above.
    unsafe {
        (api.set_dtype)(dt, st);
        (api.set_enabled)(dt, true);
        (api.increment_nesting)();
    }
    struct Restore<'a>(&'a Api, i8, bool, i8);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe {
                if (self.0.decrement_nesting)() == 0 {
                    (self.0.clear_cache)();
                }
                (self.0.set_enabled)(self.1, self.2);
                (self.0.set_dtype)(self.1, self.3);
            }
        }
    }
    let _restore = Restore(api, dt, was_enabled, was_dtype);
    Ok(f())
}
