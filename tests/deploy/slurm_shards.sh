#!/usr/bin/env bash
# End-to-end test of deploy/slurm on a real single-node Slurm (scripts/slurm-local.sh):
#   1. risk-infer on one raster, unsharded: the reference class map;
#   2. `sbatch --wait --array=0-3` of deploy/slurm/risk-infer-array.sbatch: 4 shard parts;
#   3. `sbatch --wait` of deploy/slurm/risk-infer-mosaic.sbatch (afterok on the array):
#      `risk-infer mosaic` joins the parts;
#   4. the mosaic must equal the reference: same size, geotransform, CRS, nodata, and every
#      pixel (the band data of both, dumped raw by gdal_translate, compared with cmp);
#   5. more shards than row blocks (a 256-row raster in 3 shards): the shard without rows
#      leaves a .empty marker, and the mosaic of the others equals that raster's single run;
#   6. list mode: a 2-task array over a list of 3 rasters writes each output exactly once, by
#      the task whose index is line % 2, and the one for the raster of step 1 equals the
#      reference.
# The daemons are stopped (and the state folder removed) on exit, pass or fail.
#
# Environment: RISK_INFER (default target/debug/risk-infer, built if missing, as
# `cargo test` leaves it), SHARD_INPUT (default fixtures/scene700x433.tif), KEEP=1 keeps the
# work folder. Needs root (Slurm daemons). Runs one at a time on a machine (flock).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
start_s=$SECONDS

say() { printf 'slurm_shards: %s\n' "$*" >&2; }
fail() {
    printf 'slurm_shards: FAIL: %s\n' "$*" >&2
    exit 1
}

[ -n "${ORT_DYLIB_PATH:-}" ] || { [ -f .deps/env.sh ] && source .deps/env.sh; }
[ -n "${ORT_DYLIB_PATH:-}" ] || fail "ORT_DYLIB_PATH unset: run scripts/setup.sh and source .deps/env.sh"

bin="${RISK_INFER:-$root/target/debug/risk-infer}"
if [ -z "${RISK_INFER:-}" ]; then
    cargo build -q -p risk-inference --bin risk-infer
fi
[ -x "$bin" ] || fail "$bin: not an executable"
"$bin" --help | grep -q -- '--shard' || fail "$bin has no --shard option"

input="$root/${SHARD_INPUT:-fixtures/scene700x433.tif}"
shards=4

# One Slurm test per machine at a time: the cluster's ports and state folder are fixed.
mkdir -p /run/lock
exec 9>/run/lock/risk-seg-slurm-test.lock
flock -w 900 9 || fail "another Slurm test holds /run/lock/risk-seg-slurm-test.lock"

work="$(mktemp -d -t risk-slurm-test.XXXXXX)"
chmod 755 "$work"
cleanup() {
    local rc=$?
    bash "$root/scripts/slurm-local.sh" stop || true
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        say "work folder kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# shellcheck source=scripts/lib/same-raster.sh
source "$root/scripts/lib/same-raster.sh"

say "starting a single-node Slurm"
bash scripts/slurm-local.sh start
eval "$(bash scripts/slurm-local.sh env)"
export RISK_INFER="$bin" RISK_THREADS=1

say "reference: $bin $(basename "$input") unsharded"
"$bin" "$input" -o "$work/single.tif" --threads 1 -q

# 2-3: the array (one core per task, so two run side by side on a 2-core node), then the mosaic.
mkdir -p "$work/logs"
say "sbatch --wait --array=0-$((shards - 1)) deploy/slurm/risk-infer-array.sbatch"
jid=$(sbatch --parsable --wait --array=0-$((shards - 1)) --cpus-per-task=1 --mem=1G \
    --output="$work/logs/array-%A_%a.out" \
    deploy/slurm/risk-infer-array.sbatch "$input" "$work/parts") || {
    tail -n 20 "$work"/logs/array-*.out >&2 || true
    fail "the array job failed (logs above)"
}
jid="${jid%%;*}"
stem="$(basename "${input%.*}")"
for ((i = 0; i < shards; i++)); do
    part="$work/parts/${stem}_risk.shard-$i-of-$shards.tif"
    [ -f "$part" ] || fail "array task $i wrote no part $part"
    grep -q "shard $i/$shards" "$work/logs/array-${jid}_$i.out" ||
        fail "array task $i did not run shard $i/$shards (log: $work/logs/array-${jid}_$i.out)"
done
say "array job $jid: $shards parts"

say "sbatch --wait --dependency=afterok:$jid deploy/slurm/risk-infer-mosaic.sbatch"
sbatch --wait --quiet --dependency="afterok:$jid" --mem=1G --output="$work/logs/mosaic-%j.out" \
    deploy/slurm/risk-infer-mosaic.sbatch "$input" "$work/parts" "$shards" "$work/mosaic.tif" || {
    tail -n 20 "$work"/logs/mosaic-*.out >&2 || true
    fail "the mosaic job failed (log above)"
}
same_raster "$work/single.tif" "$work/mosaic.tif" "slurm array $shards shards + mosaic" "the unsharded run"

# 5: more shards than row blocks: 256 rows are 2 blocks of 128, so shard 2 of 3 has no rows,
# writes the .empty marker instead of a part, and the mosaic of the other two is still whole.
small="$root/fixtures/scene256_nir_u16.tif"
"$bin" "$small" -o "$work/small_single.tif" --threads 1 -q
say "sbatch --wait --array=0-2 (256 rows: 2 blocks for 3 shards)"
jid=$(sbatch --parsable --wait --array=0-2 --cpus-per-task=1 --mem=1G \
    --output="$work/logs/small-%A_%a.out" \
    deploy/slurm/risk-infer-array.sbatch "$small" "$work/small") || {
    tail -n 20 "$work"/logs/small-*.out >&2 || true
    fail "the array job on the small raster failed (logs above)"
}
jid="${jid%%;*}"
[ -f "$work/small/scene256_nir_u16_risk.shard-2-of-3.tif.empty" ] &&
    [ ! -f "$work/small/scene256_nir_u16_risk.shard-2-of-3.tif" ] ||
    fail "shard 2/3 of a 2-block raster should leave only the .empty marker"
sbatch --wait --quiet --dependency="afterok:$jid" --mem=1G --output="$work/logs/small-mosaic-%j.out" \
    deploy/slurm/risk-infer-mosaic.sbatch "$small" "$work/small" 3 || {
    tail -n 20 "$work"/logs/small-mosaic-*.out >&2 || true
    fail "the mosaic job of the small raster failed (log above)"
}
same_raster "$work/small_single.tif" "$work/small/scene256_nir_u16_risk.tif" "slurm 3 shards of 2 row blocks + mosaic" "the unsharded run"

# 6: list mode, 3 rasters in 2 tasks: line i goes to task i % 2.
printf '%s\n' "$root/fixtures/scene512.tif" "$input" "$root/fixtures/scene256_nir_u16.tif" >"$work/rasters.txt"
say "sbatch --wait --array=0-1 (list of 3 rasters)"
jid=$(sbatch --parsable --wait --array=0-1 --cpus-per-task=1 --mem=1G \
    --output="$work/logs/list-%A_%a.out" \
    deploy/slurm/risk-infer-array.sbatch "$work/rasters.txt" "$work/list") || {
    tail -n 20 "$work"/logs/list-*.out >&2 || true
    fail "the list array job failed (logs above)"
}
jid="${jid%%;*}"
line=0
while read -r raster; do
    s="$(basename "${raster%.*}")"
    task=$((line % 2))
    other=$((1 - task))
    grep -q "${s}_risk.tif" "$work/logs/list-${jid}_$task.out" ||
        fail "list line $line ($s) was not scored by task $task"
    if grep -q "${s}_risk.tif" "$work/logs/list-${jid}_$other.out"; then
        fail "list line $line ($s) was also scored by task $other"
    fi
    line=$((line + 1))
done <"$work/rasters.txt"
[ "$(find "$work/list" -name '*_risk.tif' | wc -l)" -eq 3 ] || fail "list mode: expected 3 outputs in $work/list"
same_raster "$work/single.tif" "$work/list/${stem}_risk.tif" "slurm list mode" "the unsharded run"

say "passed in $((SECONDS - start_s)) s"
