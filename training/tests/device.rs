//! Device selection: what `auto` and a forced `cuda` do on this machine, whichever it is.
//! With libtorch's CUDA backend loadable and a GPU visible, `auto` picks GPU 0; without
//! (the CPU set-up of scripts/setup.sh: no cuBLAS / cuDNN, no driver), `auto` falls back
//! to the CPU in one plain line (no loader message), and `cuda` is an error that names the
//! reason.

use risk_training::device::{self, DeviceChoice};
use tch::Device;

#[test]
fn auto_and_forced_cuda_follow_what_loads() {
    assert_eq!(device::select(DeviceChoice::Cpu).unwrap().0, Device::Cpu);
    let auto = device::select(DeviceChoice::Auto).unwrap();
    match device::load_cuda() {
        Ok(n) => {
            assert!(n >= 1);
            assert_eq!(auto.0, Device::Cuda(0));
            assert!(tch::Cuda::is_available());
            assert_eq!(device::select(DeviceChoice::Cuda(0)).unwrap().0, Device::Cuda(0));
            let err = device::select(DeviceChoice::Cuda(n)).unwrap_err().to_string();
            assert!(err.contains(&format!("only {n} CUDA GPU")), "{err}");
        }
        Err(why) => {
            let why = why.to_string();
            assert_eq!(auto.0, Device::Cpu);
            assert_eq!(
                auto.1,
                "no GPU found, training on CPU (set device: cuda to see why CUDA is unusable)"
            );
            assert!(
                why.contains("libtorch_cuda.so") || why.contains("no CUDA GPU"),
                "{why}"
            );
            let err = device::select(DeviceChoice::Cuda(0)).unwrap_err().to_string();
            assert!(err.starts_with("device cuda:0 requested, but"), "{err}");
            assert!(err.contains(&why), "{err}");
        }
    }
}
