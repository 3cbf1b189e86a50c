#!/usr/bin/env bash
# Validates deploy/k8s/*.yaml without a cluster:
#   1. kubernetes-validate (PyPI; ships the Kubernetes JSON schemas) in strict mode (unknown
#      fields are errors) against Kubernetes 1.29 (the oldest with backoffLimitPerIndex on by
#      default), 1.33 and 1.37;
#   2. tests/deploy/k8s_check.py policy: Indexed mode, --shard $(JOB_COMPLETION_INDEX)/N with
#      N == completions, --threads == CPU, --memory-budget <= 3/4 of the memory limit, the
#      mosaic's parts;
#   3. broken copies (a wrong type, an unknown field, a missing required field, a CPU that is
#      not a quantity; not Indexed, a shard count != completions, threads != CPU) must each
#      fail the checker named in their kind, so that the checks above really check.
# The validator is installed into .deps/k8s-venv on first use (about 10 s).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/.deps/k8s-venv"
validator_version=1.37.0
versions=(1.29.0 1.33.0 1.37.0)
manifests=(deploy/k8s/risk-infer-indexed-job.yaml deploy/k8s/risk-infer-mosaic-job.yaml)

say() { printf 'k8s_validate: %s\n' "$*" >&2; }
fail() {
    printf 'k8s_validate: FAIL: %s\n' "$*" >&2
    exit 1
}

if ! "$venv/bin/python" -c "import kubernetes_validate, yaml" 2>/dev/null ||
    ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$validator_version"; then
    say "installing kubernetes-validate $validator_version into $venv"
    # From scratch: a venv copied or moved from another path has scripts whose #! lines
    # point at the old one, and only a new venv mends that.
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install -q "kubernetes-validate==$validator_version"
fi

schema() {
    local v
    for v in "${versions[@]}"; do
        "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$v" "$@" || return 1
    done
}
policy() { "$venv/bin/python" tests/deploy/k8s_check.py policy "$@"; }

schema "${manifests[@]}" || fail "deploy/k8s does not validate (messages above)"
say "schema: ${manifests[*]} valid (strict) for Kubernetes ${versions[*]}"
policy "${manifests[@]}" || fail "deploy/k8s breaks the policy (messages above)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
caught=0
for kind in $("$venv/bin/python" tests/deploy/k8s_check.py kinds); do
    broken="$work/$kind.yaml"
    "$venv/bin/python" tests/deploy/k8s_check.py break "$kind" "${manifests[0]}" "$broken"
    case "$kind" in
        schema-*)
            if schema "$broken" "${manifests[1]}" >"$work/$kind.log" 2>&1; then
                fail "broken copy $kind passed the schema check"
            fi
            ;;
        policy-*)
            # The schema accepts these; only the policy knows they are wrong.
            schema "$broken" "${manifests[1]}" >"$work/$kind.log" 2>&1 ||
                fail "broken copy $kind was expected to pass the schema: $(cat "$work/$kind.log")"
            if policy "$broken" "${manifests[1]}" >"$work/$kind.log" 2>&1; then
                fail "broken copy $kind passed the policy check"
            fi
            ;;
    esac
    say "broken copy $kind rejected: $(grep -m1 -v '^$' "$work/$kind.log" | cut -c1-150)"
    caught=$((caught + 1))
done
say "passed: manifests valid, $caught of $caught broken copies rejected"
