"""Checks of the deploy/k8s manifests beyond the Kubernetes schema, and broken copies of them.

    k8s_check.py policy FILE...            # exit 1 with one line per problem
    k8s_check.py break KIND IN OUT         # writes a copy of IN broken in one way

The schema (kubernetes-validate) checks types, required and unknown fields; it has no enum for
completionMode and cannot see the relations between the fields and risk-infer's arguments that
make the Indexed Job correct. The policy checks:
  - the shard Job is Indexed, with parallelism <= completions;
  - its container passes `--shard $(JOB_COMPLETION_INDEX)/N` with N == completions, declares
    JOB_COMPLETION_INDEX (so that $(...) expands) and names its output by the index;
  - `--threads` and RAYON_NUM_THREADS equal the CPU request and limit (whole cores), and
    `--memory-budget` is at
    most 3/4 of the memory limit;
  - every volumeMount names a volume of the pod; restartPolicy is Never or OnFailure;
  - the mosaic Job lists one part per shard index, 0..N-1.
Runs in the venv of tests/deploy/k8s_validate.sh (PyYAML comes with kubernetes-validate).
"""

import re
import sys

import yaml

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
K8S_UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "M": 10**6, "G": 10**9, "": 1}


def budget_bytes(s):
    """risk-infer --memory-budget: 512M, 2G, 1.5G (binary units) or bytes."""
    m = re.fullmatch(r"([0-9.]+)([KMG]?)", s.strip(), re.IGNORECASE)
    if not m:
        raise ValueError(f"--memory-budget {s!r} is not a size like 6G")
    return float(m.group(1)) * UNITS[m.group(2).upper()]


def k8s_bytes(q):
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|)", str(q))
    if not m:
        raise ValueError(f"memory quantity {q!r} not understood")
    return float(m.group(1)) * K8S_UNITS[m.group(2)]


def cpu_cores(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def arg_after(args, flag):
    if flag in args:
        i = args.index(flag)
        if i + 1 < len(args):
            return args[i + 1]
    return None


def check_pod(name, spec, problems):
    pod = spec["template"]["spec"]
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        problems.append(f"{name}: a Job's restartPolicy must be Never or OnFailure")
    volumes = {v["name"] for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problems.append(f"{name}: container {c['name']} mounts unknown volume {m['name']}")
    return pod["containers"]


def check_shards(name, spec, problems):
    if spec.get("completionMode") != "Indexed":
        problems.append(f"{name}: completionMode must be Indexed, got {spec.get('completionMode')!r}")
    n = spec.get("completions")
    if not isinstance(n, int) or n < 1:
        problems.append(f"{name}: completions must be a positive number, got {n!r}")
        return None
    if not isinstance(spec.get("parallelism", 1), int) or not 1 <= spec.get("parallelism", 1) <= n:
        problems.append(f"{name}: parallelism must be between 1 and completions ({n})")
    for c in check_pod(name, spec, problems):
        args = [str(a) for a in c.get("args", [])]
        cname = f"{name}/{c['name']}"
        shard = arg_after(args, "--shard")
        if shard != f"$(JOB_COMPLETION_INDEX)/{n}":
            problems.append(f"{cname}: --shard must be $(JOB_COMPLETION_INDEX)/{n} (completions), got {shard!r}")
        if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in c.get("env", [])):
            problems.append(f"{cname}: JOB_COMPLETION_INDEX must be declared in env for $(...) to expand")
        out = arg_after(args, "-o")
        if out is not None and "$(JOB_COMPLETION_INDEX)" not in out:
            problems.append(f"{cname}: the part {out!r} must be named by $(JOB_COMPLETION_INDEX)")
        if out is not None and f"-of-{n}." not in out:
            problems.append(f"{cname}: the part {out!r} must say -of-{n} (completions)")
        res = c.get("resources", {})
        req, lim = res.get("requests", {}), res.get("limits", {})
        threads = arg_after(args, "--threads")
        if threads is None:
            problems.append(f"{cname}: --threads must be set (it defaults to every core of the node)")
        else:
            for kind, r in (("request", req), ("limit", lim)):
                if "cpu" not in r or cpu_cores(r["cpu"]) != float(threads):
                    problems.append(f"{cname}: --threads {threads} != CPU {kind} {r.get('cpu')!r}")
            rayon = next((e.get("value") for e in c.get("env", []) if e.get("name") == "RAYON_NUM_THREADS"), None)
            if rayon != threads:
                problems.append(f"{cname}: RAYON_NUM_THREADS (the CRF's threads) {rayon!r} != --threads {threads}")
        budget = arg_after(args, "--memory-budget")
        if budget is None or "memory" not in lim:
            problems.append(f"{cname}: --memory-budget and a memory limit must both be set")
        elif budget_bytes(budget) > 0.75 * k8s_bytes(lim["memory"]):
            problems.append(
                f"{cname}: --memory-budget {budget} is over 3/4 of the memory limit {lim['memory']}"
            )
    return n


def check_mosaic(name, spec, n, problems):
    for c in check_pod(name, spec, problems):
        args = [str(a) for a in c.get("args", [])]
        if not args or args[0] != "mosaic":
            problems.append(f"{name}: the container must run `risk-infer mosaic`")
            continue
        parts = [a for a in args[1:] if a.endswith(".tif") and "shard-" in a]
        want = [f"shard-{i}-of-{n}." for i in range(n)]
        got = [re.search(r"shard-\d+-of-\d+\.", p).group(0) for p in parts]
        if sorted(got) != sorted(want):
            problems.append(f"{name}: parts {got} do not cover shard-0..{n - 1}-of-{n}")
        if arg_after(args, "-o") is None:
            problems.append(f"{name}: no -o output")


def policy(files):
    problems = []
    jobs = {}
    for f in files:
        with open(f) as fh:
            for doc in yaml.safe_load_all(fh):
                if doc and doc.get("kind") == "Job":
                    jobs[doc["metadata"]["name"]] = doc["spec"]
    shards = [(k, s) for k, s in jobs.items() if "--shard" in str(s)]
    mosaics = [(k, s) for k, s in jobs.items() if "mosaic" in [str(a) for c in s["template"]["spec"]["containers"] for a in c.get("args", [])[:1]]]
    if len(shards) != 1 or len(mosaics) != 1:
        problems.append(f"expected one shard Job and one mosaic Job, got {len(shards)} and {len(mosaics)}")
    n = None
    for k, s in shards:
        n = check_shards(k, s, problems)
    for k, s in mosaics:
        if n:
            check_mosaic(k, s, n, problems)
    for p in problems:
        print(f"policy: {p}", file=sys.stderr)
    if not problems:
        print(f"policy: ok ({', '.join(sorted(jobs))}; {n} shards)", file=sys.stderr)
    return 1 if problems else 0


def shard_job(docs):
    return next(d for d in docs if d.get("kind") == "Job" and d["spec"].get("completionMode"))


# Each breakage names the checker that must catch it: schema (kubernetes-validate) or policy.
BREAKS = {
    "schema-completions-type": lambda d: shard_job(d)["spec"].update(completions="four"),
    "schema-unknown-field": lambda d: shard_job(d)["spec"].update(paralelism=shard_job(d)["spec"].pop("parallelism")),
    "schema-missing-container-name": lambda d: shard_job(d)["spec"]["template"]["spec"]["containers"][0].pop("name"),
    "schema-cpu-not-quantity": lambda d: shard_job(d)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(cpu=["4"]),
    "policy-not-indexed": lambda d: shard_job(d)["spec"].update(completionMode="Indexd"),
    "policy-shard-count": lambda d: shard_job(d)["spec"].update(completions=3),
    "policy-threads": lambda d: shard_job(d)["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"].update(cpu="8"),
    "policy-crf-threads": lambda d: shard_job(d)["spec"]["template"]["spec"]["containers"][0]["env"].pop(1),
}


def break_copy(kind, src, dst):
    with open(src) as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]
    BREAKS[kind](docs)
    with open(dst, "w") as fh:
        yaml.safe_dump_all(docs, fh, sort_keys=False)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "policy":
        sys.exit(policy(sys.argv[2:]))
    if len(sys.argv) == 5 and sys.argv[1] == "break":
        sys.exit(break_copy(*sys.argv[2:]))
    if len(sys.argv) == 2 and sys.argv[1] == "kinds":
        print("\n".join(BREAKS))
        sys.exit(0)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
