# Everyday commands. Run through `scripts/dev <recipe>` on a fresh machine (it sets up
# and loads .deps/env.sh), or `source .deps/env.sh` once and call `just <recipe>`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install everything a fresh Debian 12 machine needs (idempotent).
setup:
    bash scripts/setup.sh

# Formatting, lints and the whole test suite (what CI runs).
test:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace
    just deploy-test

# Regenerate the committed test scenes under fixtures/ (a test checks they match).
fixtures:
    cargo run --release -p risk-training --bin risk-train -- fixtures --out fixtures
    gdalinfo fixtures/scene512.tif | head -n 30

# A generated 1024x1024 scene and its class balance, written to out/.
synth seed="1" size="1024":
    mkdir -p out
    cargo run --release -p risk-training --bin risk-train -- synth --width {{size}} --height {{size}} --seed {{seed}} --image out/scene{{size}}_s{{seed}}.tif --labels out/scene{{size}}_s{{seed}}_labels.tif

# The main job: risk-infer on a shipped fixture with the shipped default model.
demo:
    cargo build --release -p risk-inference --bin risk-infer
    mkdir -p out
    ./target/release/risk-infer fixtures/scene512.tif -o out/risk.tif
    gdalinfo out/risk.tif | grep -E "^Size is|^PROJCRS|^Origin|^Pixel Size|NoData"

# Print a model's metadata (default: the shipped model).
info model="models/default.onnx":
    cargo run --release -q -p risk-inference --bin risk-infer -- --info {{model}}

# Side-by-side benchmarks vs the ../shared/bench references (run on an idle machine).
# risk-infer vs anchor_infer.py, risk-crf vs pydensecrf, a B0 training step Rust vs PyTorch.
bench:
    SIZE=4096 bash bench/infer_vs_anchor.sh out/bench-infer
    BIG=0 bash bench/crf_vs_pydensecrf.sh out/bench-crf
    bash bench/train_step.sh b0 4 256 10 2

# The inference benchmark at full size: 8192^2 side by side, plus a 32768^2 VRT mosaic.
bench-infer:
    BIG=32768 bash bench/infer_vs_anchor.sh out/bench-infer

# A single-node Slurm on localhost runs the deploy/slurm job array in 4 shards + the mosaic
# job (pixels identical to the single run); the Kubernetes manifests meet the schema (and
# broken copies must not).
# The deploy/ examples end to end: Slurm job array + mosaic, Kubernetes manifests.
deploy-test:
    bash tests/deploy/slurm_shards.sh
    bash tests/deploy/k8s_validate.sh

# The edge bundle: out/risk-seg-edge-<version>-x86_64.tar.gz (binary, ONNX Runtime, model).
bundle:
    bash scripts/bundle.sh

# Runs the bundle in a clean Debian 12 chroot with only libgdal32 (downloads; not in `test`).
bundle-check:
    bash scripts/bundle-check.sh
