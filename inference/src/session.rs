//! The ONNX Runtime session: loading a model, checking it against the model contract,
//! reading its metadata, choosing the execution provider, and running batches of tiles.
//!
//! # Model contract (the exporter of `training/` writes models that follow it)
//!
//! - Input `image`: float32 `(N, C, H, W)`, dynamic N, H, W; H and W multiples of 32.
//!   The pipeline feeds normalised values `(dn * scale - mean) / std` per band.
//! - Output `probs`: float32 `(N, 3, H, W)`, class probabilities (softmax in the graph),
//!   classes 0 Low, 1 Medium, 2 High. Optional second output `ordinal`: float32
//!   `(N, 2, H, W)`, the CORAL probabilities P(y > 0), P(y > 1).
//! - An FP16 model (float16 `image` and `probs`) is accepted: tiles are converted at
//!   the boundary.
//! - Metadata properties (all optional, all strings):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `risk.bands` | 1-based input bands, comma-separated | `1,2,3` (first C bands) |
//! | `risk.scale` | factor applied to raw values, one or per band | 1/255 for Byte bands, else 1 |
//! | `risk.input_type` | GDAL pixel type `risk.scale` is for (see `crate::input_scale`; `risk-train export --config` writes the training images') | `Byte` when every scale is 1/255 |
//! | `risk.mean`, `risk.std` | normalisation after scaling, per band | 0 and 1 |
//! | `risk.class_names` | comma-separated class names | `Low,Medium,High` |
//! | `risk.tile_size`, `risk.tile_overlap` | preferred tiling in pixels | 512, 64 |
//! | `risk.crf` | CRF preset (`off`, `default`, `enhanced`) or JSON parameters | `off` |
//! | `risk.decision` | decision rule, JSON (see `crate::decision`) | argmax |
//! | `risk.model_version` | free text | - |
//! | `risk.metrics`, `risk.training` | JSON of validation metrics / training config | - |
//!
//! # Execution providers
//!
//! `auto` tries TensorRT, then CUDA, then CPU, and says which one runs; forcing `cuda` or
//! `tensorrt` registers it with `error_on_failure`, so a missing GPU library is an error,
//! not a silent CPU run.
//!
//! # Session settings
//!
//! [`SessionOptions`] defaults: every graph optimisation (`All`: on the CPU the NCHWc
//! layout pass together with the fusions of the levels below; the layout pass alone was
//! markedly slower for the shipped FP16 model), intra-op threads that sleep rather than
//! spin when idle (the pipeline's reader and writer threads share the cores), ONNX
//! Runtime's CPU memory arena on, memory pattern planning on. The side-by-side
//! measurements behind them are in `bench/README.md` (`examples/session_bench.rs
//! --sweep`).
//!
//! # No telemetry
//!
//! ONNX Runtime 1.32 links Microsoft's telemetry client and `ort` enables its events by
//! default. [`disable_telemetry`] sets `ORT_DISABLE_TELEMETRY=1` before the library loads
//! (without it the client still keeps an event store under `~/.cache/Microsoft`) and the
//! one environment of the process is built with telemetry off, so no binary of the
//! workspace (nor the training crate's export checks, which load models here) sends, or
//! queues, anything.
//!
//! # Non-finite output
//!
//! A batch whose probabilities hold NaN or infinity fails the run with an error naming
//! the model: its inputs are finite (see [`crate::pipeline`]), so the model is broken.
//!
//! # IO binding
//!
//! With IO binding ([`IoBindingMode`]; `auto` = on for CUDA and TensorRT, off on the CPU)
//! a batch goes through two host tensors that ONNX Runtime allocated itself and that stay
//! bound to the session from batch to batch (re-allocated only when the batch shape
//! changes: the last, smaller batch, or another scale): the normalised tiles are written
//! into the input tensor (converted to float16 there for FP16 models) and the
//! probabilities read from the output tensor. On a GPU both are page-locked
//! (`CudaPinned`), so the host-device copies run as direct DMA transfers, and no
//! per-batch output allocation happens. On the CPU the binding works too (tests compare
//! it with the plain path bit for bit), but it only trades one copy for another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ort::ep::{self, ExecutionProvider};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{IoBinding, Session};
use ort::value::{DynTensor, TensorElementType, TensorRef, ValueType};

/// Where to run the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// TensorRT, else CUDA, else CPU.
    Auto,
    Cpu,
    Cuda,
    Tensorrt,
}

/// Whether batches go through IO binding (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBindingMode {
    /// On for CUDA and TensorRT, off on the CPU.
    Auto,
    On,
    Off,
}

/// Session settings.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub device: Device,
    /// Intra-op threads (0: ONNX Runtime's default, one per core).
    pub threads: usize,
    /// GPU index for CUDA / TensorRT.
    pub device_id: i32,
    /// TensorRT FP16 kernels.
    pub trt_fp16: bool,
    /// TensorRT engine cache folder (built engines are reused across runs).
    pub trt_cache: Option<PathBuf>,
    /// IO binding of the input and output tensors.
    pub io_binding: IoBindingMode,
    /// ONNX Runtime's graph optimisation level.
    pub optimization: Optimization,
    /// Whether idle intra-op threads spin (busy-wait) for a while before they sleep.
    pub spinning: bool,
    /// ONNX Runtime's CPU memory arena (allocations pooled across runs).
    pub arena: bool,
    /// Memory pattern planning (one allocation plan reused for inputs of one shape).
    pub memory_pattern: bool,
}

/// ONNX Runtime's graph optimisation levels (ORT_ENABLE_BASIC, _EXTENDED, _LAYOUT, _ALL).
/// `ort` 2.0.0-rc.15 calls them `Level1`, `Level2`, `Level3` and `All`; `Level3` is the
/// NCHWc layout pass alone, `All` everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimization {
    Basic,
    Extended,
    Layout,
    All,
}

impl Optimization {
    fn level(self) -> GraphOptimizationLevel {
        match self {
            Self::Basic => GraphOptimizationLevel::Level1,
            Self::Extended => GraphOptimizationLevel::Level2,
            Self::Layout => GraphOptimizationLevel::Level3,
            Self::All => GraphOptimizationLevel::All,
        }
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            device: Device::Auto,
            threads: 0,
            device_id: 0,
            trt_fp16: false,
            trt_cache: None,
            io_binding: IoBindingMode::Auto,
            optimization: Optimization::All,
            spinning: false,
            arena: true,
            memory_pattern: true,
        }
    }
}

/// Errors of model loading and running; messages name the model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: no such model file")]
    NotFound { path: PathBuf },
    #[error("{path}: is a folder, not a model file")]
    Folder { path: PathBuf },
    #[error(
        "ONNX Runtime library cannot be loaded ({msg}); run scripts/setup.sh and source .deps/env.sh, or set ORT_DYLIB_PATH"
    )]
    Runtime { msg: String },
    #[error("{path}: not a valid ONNX model ({msg})")]
    Invalid { path: PathBuf, msg: String },
    #[error("{path}: does not follow the model contract: {msg}")]
    Contract { path: PathBuf, msg: String },
    #[error("{path}: execution provider {provider} is not available ({msg})")]
    Provider {
        path: PathBuf,
        provider: &'static str,
        msg: String,
    },
    #[error("{path}: cannot be averaged with {first}: {msg}")]
    Mismatch {
        path: PathBuf,
        first: PathBuf,
        msg: String,
    },
    #[error("{path}: inference failed ({msg})")]
    Run { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// Model metadata, parsed from the ONNX metadata properties (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// Number of input channels the model takes.
    pub channels: usize,
    /// 1-based raster bands fed to the model, in order.
    pub bands: Vec<usize>,
    /// Per-band raw-value factor; `None` means 1/255 for Byte rasters, else 1.
    pub scale: Option<Vec<f32>>,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub class_names: Vec<String>,
    pub tile_size: usize,
    pub tile_overlap: usize,
    /// CRF preset or JSON parameters, as written in the model.
    pub crf: Option<String>,
    pub version: Option<String>,
    /// Whether the model has the `ordinal` output.
    pub has_ordinal: bool,
    /// Whether the model's input is float16.
    pub fp16: bool,
    /// Every metadata property, for `--info`.
    pub properties: BTreeMap<String, String>,
}

/// What a model's graph was checked to offer ([`Model::check_graph`]).
struct GraphContract {
    /// Input channels (the `image` input's fixed C).
    channels: usize,
    /// Whether `image` is float16.
    fp16: bool,
    /// Whether the `ordinal` output is present.
    has_ordinal: bool,
}

impl ModelInfo {
    /// The meaning of the `risk.*` properties for a graph that keeps the contract:
    /// bands, normalisation, tiling, class names and CRF setting, with their defaults.
    fn from_properties(
        path: &Path,
        graph: GraphContract,
        properties: BTreeMap<String, String>,
    ) -> Result<Self> {
        let GraphContract {
            channels,
            fp16,
            has_ordinal,
        } = graph;
        let contract = |msg: String| ModelError::Contract {
            path: path.to_path_buf(),
            msg,
        };
        let get = |k: &str| properties.get(k).map(String::as_str);
        let per_band = |key: &str, default: f32| -> Result<Vec<f32>> {
            match get(key) {
                None => Ok(vec![default; channels]),
                Some(v) => {
                    let mut list: Vec<f32> = parse_list(path, key, v)?;
                    if list.len() == 1 {
                        list = vec![list[0]; channels];
                    }
                    if list.len() != channels {
                        return Err(contract(format!(
                            "metadata {key} has {} values for {channels} input channels",
                            list.len()
                        )));
                    }
                    Ok(list)
                }
            }
        };
        let bands: Vec<usize> = match get("risk.bands") {
            Some(v) => parse_list(path, "risk.bands", v)?,
            None => (1..=channels).collect(),
        };
        if bands.len() != channels || bands.contains(&0) {
            return Err(contract(format!(
                "metadata risk.bands = {bands:?} must list {channels} band numbers starting at 1"
            )));
        }
        let scale = match get("risk.scale") {
            Some(_) => Some(per_band("risk.scale", 1.0)?),
            None => None,
        };
        let std = per_band("risk.std", 1.0)?;
        if std.contains(&0.0) {
            return Err(contract("metadata risk.std has a zero".into()));
        }
        let parse_usize = |key: &str, default: usize| -> Result<usize> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| contract(format!("metadata {key} = {v:?} is not a number")))
                })
                .unwrap_or(Ok(default))
        };
        let class_names = get("risk.class_names")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_else(|| {
                crate::classes::CLASS_NAMES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            });
        Ok(Self {
            channels,
            bands,
            scale,
            mean: per_band("risk.mean", 0.0)?,
            std,
            class_names,
            tile_size: parse_usize("risk.tile_size", 512)?,
            tile_overlap: parse_usize("risk.tile_overlap", 64)?,
            crf: get("risk.crf").map(str::to_string),
            version: get("risk.model_version").map(str::to_string),
            has_ordinal,
            fp16,
            properties,
        })
    }

    /// The factor of band `i` (position in `bands`) for a raster of GDAL type `gdal_type`.
    pub fn scale_for(&self, i: usize, gdal_type: &str) -> f32 {
        match &self.scale {
            Some(s) => s[i],
            None if gdal_type == "Byte" => 1.0 / 255.0,
            None => 1.0,
        }
    }
}

/// An ONNX model ready to run.
pub struct Model {
    path: PathBuf,
    session: Session,
    info: ModelInfo,
    provider: &'static str,
    /// Host memory of the bound tensors when IO binding is on: page-locked on a GPU.
    binding_memory: Option<MemoryInfo<'static>>,
    bound: Option<Bound>,
}

/// The input and output tensors of one batch shape, bound to the session (module docs).
struct Bound {
    shape: [usize; 4],
    binding: IoBinding,
    input: DynTensor,
    output: DynTensor,
}

/// Loads ONNX Runtime once (from `ORT_DYLIB_PATH`, set by `.deps/env.sh`) and returns
/// the shared environment.
fn runtime() -> Result<&'static ort::environment::Environment> {
    /// Why the runtime did not load, kept for every later call.
    #[derive(Debug, thiserror::Error)]
    enum RuntimeError {
        #[error("{0}")]
        Load(ort::LoadDynamicError),
        #[error("{0}")]
        Init(ort::Error),
    }
    static ENV: std::sync::OnceLock<std::result::Result<ort::environment::Environment, RuntimeError>> =
        std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        // Without ORT_DYLIB_PATH, the system's search path (ort's own fallback would panic).
        let path = std::env::var_os("ORT_DYLIB_PATH")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "libonnxruntime.so".into());
        disable_telemetry();
        let builder = ort::init_from(path).map_err(RuntimeError::Load)?;
        // Telemetry off: ONNX Runtime 1.32 links Microsoft's 1DS telemetry client and ort
        // turns its events on unless told otherwise; a tool for edge servers of hazard
        // agencies contacts no one.
        builder
            .with_name("risk-infer")
            .with_telemetry(false)
            .build()
            .map_err(RuntimeError::Init)
    })
    .as_ref()
    .map_err(|e| ModelError::Runtime { msg: e.to_string() })
}

/// Turns ONNX Runtime's telemetry client off for this process: `ORT_DISABLE_TELEMETRY=1`
/// before the library loads. (The API switch alone, [`runtime`]'s `with_telemetry(false)`,
/// stops the events but not the client: ONNX Runtime 1.32 still opens its event store
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db` and looks for CA
/// certificates to upload with.) Binaries call it first in `main`, while they have one
/// thread; [`Model::load`] calls it too.
pub fn disable_telemetry() {
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_some_and(|v| v == "1") {
        return;
    }
    // SAFETY: called first in `main` (one thread) or, in a library user, once before
    // ONNX Runtime loads; nothing else of this crate reads the environment concurrently.
    unsafe { std::env::set_var("ORT_DISABLE_TELEMETRY", "1") };
}

fn parse_list<T: std::str::FromStr>(path: &Path, key: &str, value: &str) -> Result<Vec<T>> {
    value
        .split(',')
        .map(|s| s.trim().parse::<T>())
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(|_| ModelError::Contract {
            path: path.to_path_buf(),
            msg: format!("metadata {key} = {value:?} is not a comma-separated list of numbers"),
        })
}

fn element_type(vt: &ValueType) -> Option<TensorElementType> {
    match vt {
        ValueType::Tensor { ty, .. } => Some(*ty),
        _ => None,
    }
}

fn dims(vt: &ValueType) -> Vec<i64> {
    match vt {
        ValueType::Tensor { shape, .. } => shape.iter().copied().collect(),
        _ => Vec::new(),
    }
}

impl Model {
    /// Loads `path`, checks the contract and registers the execution provider.
    pub fn load(path: impl AsRef<Path>, options: &SessionOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if path.is_dir() {
            return Err(ModelError::Folder { path });
        }
        if !path.is_file() {
            return Err(ModelError::NotFound { path });
        }
        let invalid = |msg: String| ModelError::Invalid {
            path: path.clone(),
            msg,
        };
        runtime()?; // before anything else touches ONNX Runtime's API
        let (session, provider) = match options.device {
            Device::Cpu => (Self::build(&path, options, None)?, "CPU"),
            Device::Cuda => (Self::build(&path, options, Some(Device::Cuda))?, "CUDA"),
            Device::Tensorrt => (Self::build(&path, options, Some(Device::Tensorrt))?, "TensorRT"),
            Device::Auto => {
                let mut chosen = None;
                for (device, name) in [(Device::Tensorrt, "TensorRT"), (Device::Cuda, "CUDA")] {
                    let available = match device {
                        Device::Tensorrt => ep::TensorRT::is_available().unwrap_or(false),
                        _ => ep::CUDA::is_available().unwrap_or(false),
                    };
                    if !available {
                        continue;
                    }
                    match Self::build(&path, options, Some(device)) {
                        Ok(s) => {
                            chosen = Some((s, name));
                            break;
                        }
                        Err(e @ ModelError::Provider { .. }) => {
                            tracing::info!("{e}; trying the next provider")
                        }
                        Err(e) => return Err(e),
                    }
                }
                match chosen {
                    Some(c) => c,
                    None => (Self::build(&path, options, None)?, "CPU"),
                }
            }
        };
        let info = Self::read_info(&path, &session).map_err(|e| match e {
            ModelError::Run { msg, .. } => invalid(msg),
            other => other,
        })?;
        let gpu = provider != "CPU";
        let binding_memory = match options.io_binding {
            IoBindingMode::Off => None,
            IoBindingMode::Auto if !gpu => None,
            _ => {
                let (device, id, memory) = if gpu {
                    (
                        AllocationDevice::CUDA_PINNED,
                        options.device_id,
                        MemoryType::CPUInput,
                    )
                } else {
                    (AllocationDevice::CPU, 0, MemoryType::Default)
                };
                Some(
                    MemoryInfo::new(device, id, AllocatorType::Device, memory)
                        .map_err(|e| invalid(e.to_string()))?,
                )
            }
        };
        Ok(Self {
            path,
            session,
            info,
            provider,
            binding_memory,
            bound: None,
        })
    }

    /// Whether batches go through IO binding.
    pub fn io_binding(&self) -> bool {
        self.binding_memory.is_some()
    }

    fn build(path: &Path, options: &SessionOptions, gpu: Option<Device>) -> Result<Session> {
        let invalid = |e: ort::Error| ModelError::Invalid {
            path: path.to_path_buf(),
            msg: e.to_string(),
        };
        let mut builder = Session::builder(runtime()?)
            .map_err(invalid)?
            .with_optimization_level(options.optimization.level())
            .map_err(|e| invalid(e.into()))?
            .with_memory_pattern(options.memory_pattern)
            .map_err(|e| invalid(e.into()))?;
        if options.threads > 0 {
            builder = builder
                .with_intra_threads(options.threads)
                .map_err(|e| invalid(e.into()))?;
        }
        builder = builder
            .with_intra_op_spinning(options.spinning)
            .map_err(|e| invalid(e.into()))?;
        if !options.arena {
            let cpu = ep::CPU::default().with_arena_allocator(false).build();
            builder = builder
                .with_execution_providers([cpu])
                .map_err(|e| invalid(e.into()))?;
        }
        if let Some(device) = gpu {
            let (name, dispatch) = match device {
                Device::Tensorrt => {
                    let mut trt = ep::TensorRT::default()
                        .with_device_id(options.device_id)
                        .with_fp16(options.trt_fp16);
                    if let Some(dir) = &options.trt_cache {
                        trt = trt
                            .with_engine_cache(true)
                            .with_engine_cache_path(dir.display())
                            .with_timing_cache(true)
                            .with_timing_cache_path(dir.display());
                    }
                    ("TensorRT", trt.build().error_on_failure())
                }
                _ => (
                    "CUDA",
                    ep::CUDA::default()
                        .with_device_id(options.device_id)
                        .build()
                        .error_on_failure(),
                ),
            };
            builder = builder
                .with_execution_providers([dispatch])
                .map_err(|e| ModelError::Provider {
                    path: path.to_path_buf(),
                    provider: name,
                    msg: e.to_string(),
                })?;
        }
        builder.commit_from_file(path).map_err(invalid)
    }

    /// The model's metadata (`risk.*`, see the module docs) read once the graph keeps
    /// the contract: [`Model::check_graph`], then the properties, then their meaning
    /// ([`ModelInfo::from_properties`]). Each step's errors name the model file.
    fn read_info(path: &Path, session: &Session) -> Result<ModelInfo> {
        let graph = Self::check_graph(path, session)?;
        let properties = Self::read_properties(path, session)?;
        ModelInfo::from_properties(path, graph, properties)
    }

    /// The contract of the graph itself: an `image` input (N, C, H, W) of float32 or
    /// float16 with fixed C, a `probs` output (N, 3, H, W), and whether it has `ordinal`.
    fn check_graph(path: &Path, session: &Session) -> Result<GraphContract> {
        let contract = |msg: String| ModelError::Contract {
            path: path.to_path_buf(),
            msg,
        };
        let input = session
            .inputs()
            .iter()
            .find(|o| o.name() == "image")
            .ok_or_else(|| {
                contract(format!(
                    "no input named `image` (inputs: {})",
                    names(session.inputs())
                ))
            })?;
        let fp16 = match element_type(input.dtype()) {
            Some(TensorElementType::Float32) => false,
            Some(TensorElementType::Float16) => true,
            other => {
                return Err(contract(format!(
                    "input `image` must be float32 or float16, not {other:?}"
                )));
            }
        };
        let in_dims = dims(input.dtype());
        if in_dims.len() != 4 || in_dims[1] <= 0 {
            return Err(contract(format!(
                "input `image` must be (N, C, H, W) with fixed C, got {in_dims:?}"
            )));
        }
        let channels = in_dims[1] as usize;
        let probs = session
            .outputs()
            .iter()
            .find(|o| o.name() == "probs")
            .ok_or_else(|| {
                contract(format!(
                    "no output named `probs` (outputs: {})",
                    names(session.outputs())
                ))
            })?;
        let out_dims = dims(probs.dtype());
        if out_dims.len() != 4 || (out_dims[1] != crate::classes::NUM_CLASSES as i64 && out_dims[1] != -1) {
            return Err(contract(format!(
                "output `probs` must be (N, 3, H, W), got {out_dims:?}"
            )));
        }
        let has_ordinal = session.outputs().iter().any(|o| o.name() == "ordinal");
        Ok(GraphContract {
            channels,
            fp16,
            has_ordinal,
        })
    }

    /// Every custom metadata property of the model.
    fn read_properties(path: &Path, session: &Session) -> Result<BTreeMap<String, String>> {
        let meta = session.metadata().map_err(|e| ModelError::Run {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let mut properties = BTreeMap::new();
        for key in meta.custom_keys().unwrap_or_default() {
            if let Some(v) = meta.custom(&key) {
                properties.insert(key, v);
            }
        }
        Ok(properties)
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The execution provider that runs the model: `CPU`, `CUDA` or `TensorRT`.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Runs a batch: `input` is `(n, C, h, w)` normalised float32; writes `(n, 3, h, w)`
    /// probabilities into `probs`.
    pub fn run(&mut self, input: &[f32], n: usize, h: usize, w: usize, probs: &mut [f32]) -> Result<()> {
        let c = self.info.channels;
        assert_eq!(input.len(), n * c * h * w, "input batch size");
        assert_eq!(probs.len(), n * 3 * h * w, "output batch size");
        let run_err = |msg: String| ModelError::Run {
            path: self.path.clone(),
            msg,
        };
        let shape = [n, c, h, w];
        if self.binding_memory.is_some() {
            self.run_bound(input, shape, probs).map_err(|e| ModelError::Run {
                path: self.path.clone(),
                msg: e.to_string(),
            })?;
            return self.check_finite(probs);
        }
        if self.info.fp16 {
            let half: Vec<half::f16> = input.iter().map(|&v| half::f16::from_f32(v)).collect();
            let tensor =
                TensorRef::from_array_view((shape, half.as_slice())).map_err(|e| run_err(e.to_string()))?;
            let outputs = self
                .session
                .run(ort::inputs!["image" => tensor])
                .map_err(|e| run_err(e.to_string()))?;
            let (_, data) = outputs["probs"]
                .try_extract_tensor::<half::f16>()
                .map_err(|e| run_err(e.to_string()))?;
            for (o, v) in probs.iter_mut().zip(data) {
                *o = v.to_f32();
            }
        } else {
            let tensor = TensorRef::from_array_view((shape, input)).map_err(|e| run_err(e.to_string()))?;
            let outputs = self
                .session
                .run(ort::inputs!["image" => tensor])
                .map_err(|e| run_err(e.to_string()))?;
            let (out_shape, data) = outputs["probs"]
                .try_extract_tensor::<f32>()
                .map_err(|e| run_err(e.to_string()))?;
            if data.len() != probs.len() {
                return Err(run_err(format!(
                    "output `probs` has shape {out_shape:?}, expected [{n}, 3, {h}, {w}]"
                )));
            }
            probs.copy_from_slice(data);
        }
        self.check_finite(probs)
    }

    /// A model whose probabilities are NaN or infinite is broken (its inputs are finite
    /// and clamped, see [`crate::pipeline`]): the run stops, naming the model.
    fn check_finite(&self, probs: &[f32]) -> Result<()> {
        match probs.iter().filter(|v| !v.is_finite()).count() {
            0 => Ok(()),
            bad => Err(ModelError::Run {
                path: self.path.clone(),
                msg: format!(
                    "the model returned {bad} non-finite probabilities (NaN or infinite) of {}; it is broken or does not fit this input",
                    probs.len()
                ),
            }),
        }
    }
}

impl Model {
    /// [`Model::run`] through the bound tensors (allocated for a new batch shape).
    fn run_bound(&mut self, input: &[f32], shape: [usize; 4], probs: &mut [f32]) -> ort::Result<()> {
        let ty = if self.info.fp16 {
            TensorElementType::Float16
        } else {
            TensorElementType::Float32
        };
        if self.bound.as_ref().is_none_or(|b| b.shape != shape) {
            self.bound = None; // release the old batch shape's memory first
            let memory = self.binding_memory.clone().expect("IO binding on");
            let allocator = Allocator::new(&self.session, memory)?;
            let [n, _, h, w] = shape;
            let input = DynTensor::new(&allocator, ty, shape)?;
            let mut output = DynTensor::new(&allocator, ty, [n, 3, h, w])?;
            let mut binding = self.session.create_binding()?;
            binding.bind_output("probs", &mut output)?;
            self.bound = Some(Bound {
                shape,
                binding,
                input,
                output,
            });
        }
        let Bound {
            binding,
            input: bound_in,
            output: bound_out,
            ..
        } = self.bound.as_mut().expect("allocated above");
        if self.info.fp16 {
            let (_, dst) = bound_in.try_extract_tensor_mut::<half::f16>()?;
            for (d, &s) in dst.iter_mut().zip(input) {
                *d = half::f16::from_f32(s);
            }
        } else {
            bound_in.try_extract_tensor_mut::<f32>()?.1.copy_from_slice(input);
        }
        binding.bind_input("image", bound_in)?;
        drop(self.session.run_binding(binding)?);
        if self.info.fp16 {
            let (_, src) = bound_out.try_extract_tensor::<half::f16>()?;
            for (o, v) in probs.iter_mut().zip(src) {
                *o = v.to_f32();
            }
        } else {
            probs.copy_from_slice(bound_out.try_extract_tensor::<f32>()?.1);
        }
        Ok(())
    }
}

fn names(outlets: &[ort::value::Outlet]) -> String {
    outlets
        .iter()
        .map(|o| o.name().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
