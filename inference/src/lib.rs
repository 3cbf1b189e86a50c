//! risk-inference: score geospatial rasters into ordinal risk classes (0 Low, 1 Medium,
//! 2 High, 255 nodata) with an ONNX model, without libtorch.
//!
//! Data flow: [`raster`] reads windows of the input with GDAL -> tiles are normalised and
//! batched through the ONNX Runtime session ([`predictor`]: one model, or the mean of an
//! ensemble x test-time transforms x scales from [`augment`]) -> overlapping tile
//! probabilities are blended -> an optional dense CRF refines them -> [`decision`] turns
//! them into classes (argmax, or the model's fitted per-class offsets) -> [`raster`]
//! writes the class map (temporary file, renamed into place). [`pipeline`] runs these
//! stages for one raster, one file per stage (`docs/architecture.md` follows a raster
//! through them). [`metrics`] compares class maps with label rasters.
//! [`crf`] is the dense CRF (pydensecrf-exact permutohedral mean-field, tiled for large
//! rasters); [`npy`] reads and writes the `.npy` arrays of the Python reference harness.
//! [`output`] is the one way every writer puts a file in place (temporary, verified,
//! renamed) and checks a run's output paths first.
//! [`shard`] splits one run over N jobs (`--shard I/N`) and mosaics their parts.
//! [`input_scale`] checks each raster's pixel type against the model's before scoring.
//! [`autobatch`] chooses the tiles per model run (`--batch auto`) by timing batches.
//! [`provenance`] writes how each output was made into its metadata; [`vector`] turns
//! the finished class map into polygons of risk zones (GeoPackage); [`review`] ranks the
//! windows where the model is least sure about Medium, for annotators.

pub mod augment;
pub mod autobatch;
pub mod classes;
pub mod crf;
pub mod decision;
pub mod fill;
pub mod input_scale;
pub mod metrics;
pub mod npy;
pub mod output;
pub mod pipeline;
pub mod predictor;
pub mod provenance;
pub mod raster;
pub mod review;
pub mod session;
pub mod shard;
pub mod tiling;
pub mod vector;
