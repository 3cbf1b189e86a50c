# Everyday commands. Run through `scripts/dev <recipe>` on a fresh machine (it sets up
# and loads .deps/env.sh), or `source .deps/env.sh` once and call `just <recipe>`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install everything a fresh Debian 12 machine needs (idempotent); `just setup --inference`
# installs only what scoring rasters needs (no libtorch).
setup *profile:
    bash scripts/setup.sh {{profile}}

# Formatting, lints and the whole test suite (what CI runs).
test:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    python3 scripts/import_cycles.py
    cargo test --workspace
    just deploy-test

# Regenerate the committed test scenes under fixtures/ (a test checks they match).
fixtures:
    cargo run --release -p risk-training --bin risk-train -- fixtures -o fixtures
    gdalinfo fixtures/scene512.tif | head -n 30

# A generated 1024x1024 scene and its class balance, written to out/.
synth seed="1" size="1024":
    mkdir -p out
    cargo run --release -p risk-training --bin risk-train -- synth --width {{size}} --height {{size}} --seed {{seed}} --image out/scene{{size}}_s{{seed}}.tif --labels out/scene{{size}}_s{{seed}}_labels.tif

# The ceiling (oracle) and floor (colour classifier) of generated scenes per held-out seed:
# the bench/README.md table (12 scenes of 2048^2, about a minute).
synth-stats generator="v2" size="2048" seeds="401,402,403,404,405,406,407,408,409,410,411,412":
    cargo run --release -p risk-training --bin risk-train -- synth-stats --generator {{generator}} --size {{size}} --seeds {{seeds}} --train-seed 400

# The main job: risk-infer on a shipped fixture (demo512: a generated v2 scene, the shipped
# model's kind of imagery) with the shipped default model, then the map against the
# fixture's labels (risk-eval; its figures and report go to out/demo_eval/).
demo:
    cargo build --release -p risk-inference --bin risk-infer --bin risk-eval
    mkdir -p out
    ./target/release/risk-infer fixtures/demo512.tif -o out/risk.tif
    gdalinfo out/risk.tif | grep -E "^Size is|^PROJCRS|^Origin|^Pixel Size|NoData"
    ./target/release/risk-eval out/risk.tif --truth fixtures/demo512_labels.tif -o out/demo_eval

# Print a model's metadata (default: the shipped model).
info model="models/default.onnx":
    cargo run --release -q -p risk-inference --bin risk-infer -- --info {{model}}

# Side-by-side benchmarks vs the Python references of bench/reference/ (run on an idle
# machine): risk-infer vs peer_infer.py, risk-crf vs pydensecrf, a B0 training step Rust vs
# PyTorch. Results and how to read them: bench/README.md.
bench:
    SIZE=4096 bash bench/infer_vs_anchor.sh out/bench-infer
    BIG=0 bash bench/crf_vs_pydensecrf.sh out/bench-crf
    bash bench/train_step.sh b0 4 256 10 2

# The inference benchmark at full size: 8192^2 side by side, plus a 32768^2 VRT mosaic.
bench-infer:
    BIG=32768 bash bench/infer_vs_anchor.sh out/bench-infer

# Training parity: risk-train vs the PyTorch reference trainer (bench/reference/train_ref.py),
# B0, 3 seeds each, per-epoch validation metrics and issue 17's verdict (run on an idle
# machine; bench/README.md says how long and how to read it).
train-parity:
    cargo build --release -q -p risk-training --bin risk-train
    bash bench/train_parity.sh

# The ablation of the V2.5 recipe (bench/ablation.sh): V2 -> + CBAM -> + SMOTE -> + enhanced
# CRF, B0, three seeds each, scored on held-out seeds with the oracle beside them (about
# 1.5 h on 2 cores; docs/ablation.md has the table). `B4_EPOCHS=N just ablation` adds a B4.
ablation:
    cargo build --release -q -p risk-training -p risk-inference
    bash bench/ablation.sh all

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

# HEAD, exported into a clean Debian 12 chroot with nothing beside it, runs the README's two
# commands (`scripts/dev demo`, then `scripts/dev test`); prints their times and disk use.
# Needs root and a network; about an hour on 2 cores (not in `test`).
fresh-check:
    bash scripts/fresh-check.sh

# Train, export and evaluate the shipped models/default.onnx (model card: models/README.md):
# generated v2 scenes (training/make_scenes.sh: seeds 311-322 train, a mosaic of 331-334
# validates), the B0 edge config with the V2.5 recipe (training/config.edge.yaml: 256 px
# tiles, colour jitter 0.4, duplication + SMOTE, CBAM pooled per 256 px window), FP16
# export with 512 px inference tiles, the decision rule fitted on the validation mosaic,
# then the held-out table (bench/heldout.sh, seeds 401-406).
train-default:
    cargo build --release -p risk-training -p risk-inference
    bash training/make_scenes.sh
    target/release/risk-train fit training/config.edge.yaml
    target/release/risk-train export out/runs/edge-b0/best.safetensors --config training/config.edge.yaml --fp16 --meta risk.tile_size=512 --meta risk.tile_overlap=64 --model-version "edge-b0-3: EfficientNet-B0 attention U-Net, V2.5 recipe, generated v2 scenes 311-322, training/config.edge.yaml" --val-image out/v2b/val.tif --val-labels out/v2b/val_labels.tif -o models/default.onnx
    just train-eval models/default.onnx models/default_metrics.json
    bash bench/heldout.sh models/default.onnx

# Seed 401 is a held-out seed (never trained, validated or tuned on); the metrics JSON is
# copied to `metrics`. A model's metrics on that generated v2 scene (1024 x 1024) vs the
# V2 baseline and SPEC targets.
train-eval model="models/default.onnx" metrics="out/heldout/metrics.json":
    mkdir -p out/heldout
    target/release/risk-train synth --width 1024 --height 1024 --seed 401 --image out/heldout/scene1024_s401.tif --labels out/heldout/scene1024_s401_labels.tif
    target/release/risk-infer out/heldout/scene1024_s401.tif -m {{model}} -o out/heldout/risk.tif
    target/release/risk-eval out/heldout/risk.tif --truth out/heldout/scene1024_s401_labels.tif --baseline models/v2_baseline_metrics.json -o out/heldout/eval
    cp out/heldout/eval/metrics.json {{metrics}}

# Runs in out/runs/edge-b0/seed<N>, members exported (FP16) to out/ensemble/, and the
# ensemble's decision rule fitted on the averaged members (risk-train decide --with).
# The V3 ensemble: the edge training with seeds 42, 123, 456.
train-ensemble:
    cargo build --release -p risk-training
    mkdir -p out/ensemble
    bash training/make_scenes.sh
    target/release/risk-train fit training/config.edge.yaml --seeds 42,123,456
    for s in 42 123 456; do target/release/risk-train export out/runs/edge-b0/seed$s/best.safetensors --config training/config.edge.yaml --fp16 --meta risk.tile_size=512 --meta risk.tile_overlap=64 --model-version "edge-b0-3 ensemble member, seed $s" --val-image out/v2b/val.tif --val-labels out/v2b/val_labels.tif -o out/ensemble/edge-b0-seed$s.onnx; done
    # The ensemble's own rule, fitted on the three members' averaged probabilities, in a copy
    # of the first member to pass first: risk-infer -m out/ensemble/edge-b0-ens3-first.onnx
    # -m out/ensemble/edge-b0-seed123.onnx -m out/ensemble/edge-b0-seed456.onnx ...
    target/release/risk-train decide out/ensemble/edge-b0-seed42.onnx --with out/ensemble/edge-b0-seed123.onnx --with out/ensemble/edge-b0-seed456.onnx --image out/v2b/val.tif --labels out/v2b/val_labels.tif -o out/ensemble/edge-b0-ens3-first.onnx

# Metrics and time cost of --tta, --scales and ensembles on a held-out synth scene.
bench-tta:
    bash bench/tta_ensemble.sh out/bench-tta
