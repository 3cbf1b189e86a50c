#!/usr/bin/env bash
# `just bundle-check`: proves the edge bundle runs on a clean Debian 12 with only the
# documented runtime package (libgdal32) installed.
#
#   1. a minimal Debian 12 chroot (debootstrap --variant=minbase bookworm from deb.debian.org,
#      then `apt-get install --no-install-recommends libgdal32`), cached in
#      .deps/bookworm-chroot (first time: downloads, a few minutes; then seconds);
#   2. the bundle (`scripts/bundle.sh`, unless BUNDLE=path.tar.gz) unpacked into its /opt;
#   3. inside the chroot, with /proc mounted and an empty environment: bin/risk-infer on
#      fixtures/scene700x433.tif, unsharded, then in 2 shards + `risk-infer mosaic`;
#   4. both class maps must equal, pixel for pixel and in georeferencing, the same run of the
#      same bundle on this machine (the development machine, with .deps and the full GDAL).
# Needs root (chroot, mount). Not part of `just test` (it downloads Debian packages).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
chroot_dir="${BOOKWORM_CHROOT:-$root/.deps/bookworm-chroot}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
fixture="fixtures/scene700x433.tif"
start_s=$SECONDS

say() { printf 'bundle-check: %s\n' "$*" >&2; }
fail() {
    printf 'bundle-check: FAIL: %s\n' "$*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot, mount)"

# --- 1. the clean Debian 12 ---------------------------------------------------------------
if [ ! -f "$chroot_dir/.risk-seg-ready" ]; then
    if ! command -v debootstrap >/dev/null; then
        say "apt-get install debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    rm -rf "$chroot_dir"
    say "debootstrap --variant=minbase bookworm $chroot_dir ($mirror)"
    t=$SECONDS
    debootstrap --variant=minbase bookworm "$chroot_dir" "$mirror" >"$root/.deps/debootstrap.log" 2>&1 ||
        fail "debootstrap failed; see .deps/debootstrap.log"
    say "debootstrap: $((SECONDS - t)) s"
    cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
    t=$SECONDS
    chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends libgdal32 && apt-get clean' \
        >"$root/.deps/bookworm-chroot-apt.log" 2>&1 ||
        fail "apt-get install libgdal32 in the chroot failed; see .deps/bookworm-chroot-apt.log"
    say "apt-get install --no-install-recommends libgdal32: $((SECONDS - t)) s"
    touch "$chroot_dir/.risk-seg-ready"
fi
packages=$(chroot "$chroot_dir" dpkg-query -W -f='${Package}\n' | wc -l)
say "chroot $chroot_dir: Debian $(cat "$chroot_dir/etc/debian_version"), $packages packages, $(du -sh "$chroot_dir" | cut -f1)"
for absent in gdal-bin libgdal-dev python3 cargo rustc; do
    if chroot "$chroot_dir" dpkg-query -W -f='${Status}' "$absent" 2>/dev/null | grep -q "install ok installed"; then
        fail "the chroot is not minimal: $absent is installed"
    fi
done

# --- 2. the bundle ------------------------------------------------------------------------
bundle="${BUNDLE:-}"
if [ -z "$bundle" ]; then
    bundle="$(bash scripts/bundle.sh)"
fi
[ -f "$bundle" ] || fail "no bundle at $bundle"
name="$(basename "$bundle" .tar.gz)"
say "bundle $bundle ($(du -h "$bundle" | cut -f1))"

work="$(mktemp -d -t risk-bundle-check.XXXXXX)"
rm -rf "$chroot_dir/opt/risk-seg" "$chroot_dir/job"
mkdir -p "$chroot_dir/opt/risk-seg" "$chroot_dir/job"
tar -xzf "$bundle" -C "$chroot_dir/opt/risk-seg"
cp "$fixture" "$chroot_dir/job/scene.tif"
mount -t proc proc "$chroot_dir/proc"
cleanup() {
    umount "$chroot_dir/proc" 2>/dev/null || umount -l "$chroot_dir/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- 3. run inside the chroot, with nothing from this machine's environment ---------------------
in_chroot() {
    chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
        "/opt/risk-seg/$name/bin/risk-infer" "$@"
}
t=$SECONDS
in_chroot /job/scene.tif -o /job/risk.tif --threads 2 ||
    fail "risk-infer failed inside the clean Debian 12"
run_s=$((SECONDS - t))
# Called through a symlink on PATH, as an installed command would be.
ln -sf "/opt/risk-seg/$name/bin/risk-infer" "$chroot_dir/usr/local/bin/risk-infer"
chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin risk-infer --info \
    "/opt/risk-seg/$name/models/default.onnx" >/dev/null ||
    fail "the bundle does not run through a symlink on PATH"
in_chroot --version >&2
have_shard=0
if in_chroot --help | grep -q -- '--shard'; then
    have_shard=1
    for i in 0 1; do
        in_chroot /job/scene.tif -o "/job/part$i.tif" --shard "$i/2" --threads 2 -q ||
            fail "risk-infer --shard $i/2 failed inside the clean Debian 12"
    done
    in_chroot mosaic /job/part0.tif /job/part1.tif -o /job/mosaic.tif ||
        fail "risk-infer mosaic failed inside the clean Debian 12"
fi

# --- 4. the same bundle on this machine --------------------------------------------------------
host="$work/host"
mkdir -p "$host"
tar -xzf "$bundle" -C "$host"
env -u ORT_DYLIB_PATH -u RISK_MODEL "$host/$name/bin/risk-infer" "$fixture" -o "$work/host.tif" --threads 2 -q

# shellcheck source=scripts/lib/same-raster.sh
source "$root/scripts/lib/same-raster.sh"
same() { same_raster "$work/host.tif" "$1" "$2" "this machine's run"; }
same "$chroot_dir/job/risk.tif" "clean Debian 12, unsharded (${run_s} s)"
if [ "$have_shard" = 1 ]; then
    same "$chroot_dir/job/mosaic.tif" "clean Debian 12, 2 shards + mosaic"
else
    say "this build has no --shard: shard + mosaic inside the chroot not checked"
fi
say "passed in $((SECONDS - start_s)) s (libgdal32 only; bundle $(du -h "$bundle" | cut -f1))"
