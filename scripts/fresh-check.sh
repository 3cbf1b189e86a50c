#!/usr/bin/env bash
# `just fresh-check`: proves that a clone needs nothing beside it. HEAD is exported with
# `git archive` into an empty folder (/job/risk-seg, no sibling folders) of a clean Debian 12
# chroot, and the README's two commands run there in order, as a new user would:
#
#   scripts/dev demo     # inference profile: set-up, then risk-infer on a fixture
#   scripts/dev test     # full profile: the rest of the set-up, then the whole suite
#
#   1. a minimal Debian 12 (debootstrap --variant=minbase bookworm), made once and kept
#      pristine in $FRESH_CHECK_DIR/base; every run starts from a fresh copy of it;
#   2. the host's Rust toolchain (`rustc --print sysroot`) and cargo registry
#      ($CARGO_HOME/registry) bind-mounted read-only; cargo runs offline from that
#      registry (crates.io is the one thing not fetched again); apt and PyPI are reached
#      over the network as on any new machine (with this machine's DNS and local CAs);
#   3. each command's wall time, its log, and the disk used after it (the clone's .deps,
#      its target/ and the whole chroot) are printed and kept in $FRESH_CHECK_DIR/logs.
# Needs root (debootstrap, chroot, mount) and a network. Not part of `just test`: it runs
# the whole suite again from a cold build (about an hour on 2 cores).
#
# Env: FRESH_CHECK_DIR (default .deps/fresh-check), DEBIAN_MIRROR, COMMANDS (default
# "demo test"), SLURM_LOCAL_PORT (default 26817: the suite's local Slurm must not meet one
# that runs on this machine; the chroot shares its network).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dir="$(realpath -m "${FRESH_CHECK_DIR:-$root/.deps/fresh-check}")"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
commands="${COMMANDS-demo test}"
base="$dir/base"
jail="$dir/chroot"
logs="$dir/logs"
start_s=$SECONDS

say() { printf 'fresh-check: %s\n' "$*" >&2; }
fail() {
    printf 'fresh-check: FAIL: %s\n' "$*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot, mount)"
sysroot="$(rustc --print sysroot 2>/dev/null)" || fail "no rustc on PATH (the host toolchain is mounted into the chroot)"
registry="${CARGO_HOME:-$HOME/.cargo}/registry"
[ -d "$registry" ] || fail "no cargo registry at $registry: run cargo fetch once on this machine"
mkdir -p "$dir" "$logs"

# --- 1. a pristine minimal Debian 12, then a fresh copy of it ------------------------------
if [ ! -f "$base/.risk-seg-base" ]; then
    if ! command -v debootstrap >/dev/null; then
        say "apt-get install debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    rm -rf "$base"
    say "debootstrap --variant=minbase bookworm ($mirror)"
    t=$SECONDS
    debootstrap --variant=minbase bookworm "$base" "$mirror" >"$logs/debootstrap.log" 2>&1 ||
        fail "debootstrap failed; see $logs/debootstrap.log"
    touch "$base/.risk-seg-base"
    say "debootstrap: $((SECONDS - t)) s"
fi
mounts=()
cleanup() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
# A run that was killed may have left mounts behind; never delete through them.
{ grep -o " $jail/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
rm -rf --one-file-system "$jail"
cp -a "$base" "$jail"
# This machine's network set-up goes with it: DNS, and where HTTPS passes a proxy that
# signs with a local CA, that CA (installed by the chroot's ca-certificates package when
# scripts/setup.sh adds it) and pip's configuration.
cp /etc/resolv.conf "$jail/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$jail/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$jail/usr/local/share/ca-certificates/"
fi
[ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$jail/etc/pip.conf"
say "chroot: Debian $(cat "$jail/etc/debian_version"), $(chroot "$jail" dpkg-query -W | wc -l) packages, $(du -sh "$jail" | cut -f1)"

# --- 2. the clone and the read-only host tools ------------------------------------------------
mkdir -p "$jail/job/risk-seg" "$jail/opt/rust" "$jail/root/.cargo/registry"
git archive --format=tar HEAD | tar -x -C "$jail/job/risk-seg"
say "git archive $(git rev-parse --short HEAD) -> /job/risk-seg ($(ls "$jail/job" | wc -l) folder in /job)"
bind_ro() {
    mount --bind "$1" "$2"
    mounts+=("$2")
    mount -o remount,bind,ro "$2"
}
mount -t proc proc "$jail/proc" && mounts+=("$jail/proc")
mount -t sysfs sys "$jail/sys" && mounts+=("$jail/sys")
mount --bind /dev "$jail/dev" && mounts+=("$jail/dev")
mount -t devpts devpts "$jail/dev/pts" && mounts+=("$jail/dev/pts")
mount -t tmpfs shm "$jail/dev/shm" && mounts+=("$jail/dev/shm")
bind_ro "$sysroot" "$jail/opt/rust"
bind_ro "$registry" "$jail/root/.cargo/registry"

# --- 3. the README's commands ----------------------------------------------------------------
in_jail() {
    chroot "$jail" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        CARGO_HOME=/root/.cargo CARGO_NET_OFFLINE=true SLURM_LOCAL_PORT="${SLURM_LOCAL_PORT:-26817}" \
        bash -c "cd /job/risk-seg && $1"
}
usage() {
    local clone="$jail/job/risk-seg"
    printf '.deps %s, target %s, chroot %s' "$(du -sh "$clone/.deps" 2>/dev/null | cut -f1)" \
        "$(du -sh "$clone/target" 2>/dev/null | cut -f1)" \
        "$(du -sh "${mounts[@]/#/--exclude=}" "$jail" | cut -f1)"  # the host's mounts left out
}
summary=()
for cmd in $commands; do
    say "scripts/dev $cmd (log: $logs/$cmd.log)"
    t=$SECONDS
    if ! in_jail "scripts/dev $cmd" >"$logs/$cmd.log" 2>&1; then
        tail -n 30 "$logs/$cmd.log" >&2
        fail "scripts/dev $cmd failed after $((SECONDS - t)) s in the clean Debian 12; see $logs/$cmd.log"
    fi
    line="scripts/dev $cmd: $((SECONDS - t)) s; disk after it: $(usage)"
    say "$line"
    summary+=("$line")
done
in_jail "scripts/slurm-local.sh stop" >/dev/null 2>&1 || true
printf '%s\n' "${summary[@]}" >"$logs/summary.txt"
say "passed in $((SECONDS - start_s)) s:"
printf '  %s\n' "${summary[@]}" >&2
