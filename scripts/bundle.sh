#!/usr/bin/env bash
# The edge deployment bundle (`just bundle`): one tarball that runs risk-infer on a machine
# with only Debian 12's libgdal32 installed (no Rust, no Python, no ONNX Runtime package).
#
#   out/risk-seg-edge-<version>-x86_64.tar.gz
#     risk-seg-edge-<version>-x86_64/
#       bin/risk-infer                   wrapper: sets ORT_DYLIB_PATH and RISK_MODEL from its
#                                        own location, then runs libexec/risk-infer
#       libexec/risk-infer               the binary, profile release-lto, stripped
#       lib/libonnxruntime.so.1.32.0     ONNX Runtime (CPU), loaded at run time
#       models/default.onnx              the shipped model
#       README.md                        running on small machines (deploy/edge/README.md)
#       SHA256SUMS
#
# Prints the bundle's path and size. Deterministic file order, owners and times (so two
# bundles of the same build have the same bytes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { printf 'bundle: %s\n' "$*" >&2; }
die() {
    printf 'bundle: error: %s\n' "$*" >&2
    exit 1
}

[ -n "${ORT_DYLIB_PATH:-}" ] || { [ -f .deps/env.sh ] && source .deps/env.sh; }
# The CPU ONNX Runtime of scripts/setup.sh, not whatever ORT_DYLIB_PATH points at (it may be
# a GPU build, whose provider libraries would not come along); BUNDLE_ORT_LIB overrides.
ort_lib="${BUNDLE_ORT_LIB:-$(find "$root/.deps/onnxruntime" -maxdepth 1 -name 'libonnxruntime.so.*' 2>/dev/null | sort | tail -n 1)}"
[ -f "$ort_lib" ] || die "ONNX Runtime library not found in .deps/onnxruntime: run scripts/setup.sh"
ort_name="$(basename "$ort_lib")"

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
[ -n "$version" ] || die "no version in Cargo.toml [workspace.package]"
arch="$(uname -m)"
name="risk-seg-edge-$version-$arch"

say "cargo build --profile release-lto -p risk-inference --no-default-features --features cli --bin risk-infer"
cargo build --profile release-lto -p risk-inference --no-default-features --features cli --bin risk-infer
binary="target/release-lto/risk-infer"

stage="out/bundle/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/libexec" "$stage/lib" "$stage/models"
cp "$binary" "$stage/libexec/risk-infer"
strip --strip-unneeded "$stage/libexec/risk-infer"
cp "$ort_lib" "$stage/lib/$ort_name"
cp models/default.onnx "$stage/models/default.onnx"
cp deploy/edge/README.md "$stage/README.md"

cat >"$stage/bin/risk-infer" <<WRAPPER
#!/bin/sh
# risk-seg edge bundle $version: runs the bundled risk-infer with the bundled ONNX Runtime
# and, unless --model or RISK_MODEL says otherwise, the bundled model.
# RISK_ORT_LIB overrides the ONNX Runtime library (e.g. onnxruntime-gpu's, for --device cuda).
set -eu
here="\$(dirname "\$(dirname "\$(readlink -f "\$0")")")"  # the bundle, also when called via a symlink
ORT_DYLIB_PATH="\${RISK_ORT_LIB:-\$here/lib/$ort_name}"
RISK_MODEL="\${RISK_MODEL:-\$here/models/default.onnx}"
export ORT_DYLIB_PATH RISK_MODEL
exec "\$here/libexec/risk-infer" "\$@"
WRAPPER
chmod 755 "$stage/bin/risk-infer" "$stage/libexec/risk-infer"
chmod 644 "$stage/lib/$ort_name" "$stage/models/default.onnx" "$stage/README.md"
(cd "$stage" && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)

mkdir -p out
tarball="out/$name.tar.gz"
epoch="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C out/bundle -cf - "$name" | gzip -n -9 >"$tarball.part"
mv "$tarball.part" "$tarball"

size=$(stat -c %s "$tarball")
unpacked=$(du -sb "$stage" | cut -f1)
say "$tarball: $((size / 1024 / 1024)) MiB ($size bytes; unpacked $((unpacked / 1024 / 1024)) MiB)"
echo "$tarball"
