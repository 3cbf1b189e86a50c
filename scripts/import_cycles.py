#!/usr/bin/env python3
"""Import cycles between the modules of the workspace's crates (issue 21: "no import
cycle anywhere in the workspace").

Each `.rs` file under a crate's `src/` is a module (`mod.rs` / `lib.rs` / `main.rs` name
their folder's module; `src/bin/*` are left out: binaries are leaves). Every path that
starts with `crate::`, `super::` or `self::` in a file's code (in `use` lines and inline,
comments and strings stripped) is resolved to the deepest module it names. A reference
from module A to module B is lifted to their common parent: the edge runs between the two
children of that parent that hold A and B, so `a::x::f` using `a::y` is the sibling edge
`x -> y`. A parent using its own children (re-exports, `mod` declarations) and a child
using its ancestors are not cycles in this sense and are left out.

Prints each cycle found (strongly connected sibling groups) with one reference line per
edge, and exits 1 if there is any; `--graph` prints every sibling edge.

    python3 scripts/import_cycles.py [--graph] [CRATE_SRC ...]
      (default: inference/src inference/synth/src training/src)
"""

import os
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["inference/src", "inference/synth/src", "training/src"]
PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def strip(code: str) -> str:
    """The code without comments, string and char literals (kept line by line)."""
    code = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), code, flags=re.S)
    code = re.sub(r'r#*"(?:.|\n)*?"#*', lambda m: "\n" * m.group(0).count("\n"), code)
    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', code, flags=re.S)
    code = re.sub(r"'(?:\\.|[^'\\])'", "''", code)
    return re.sub(r"//[^\n]*", "", code)


def module_of(src: Path, file: Path) -> tuple:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand_groups(code: str):
    """`use a::{b, c::d}` as the paths `a::b`, `a::c::d` (one level of braces)."""
    for m in USE_GROUP_RE.finditer(code):
        head = m.group(1) + m.group(2)
        for item in m.group(3).split(","):
            item = item.strip().split(" as ")[0].strip()
            if item and item not in ("self", "*") and "{" not in item:
                yield head + "::" + item


def references(code: str, here: tuple):
    """Absolute module paths (tuples) named from module `here`."""
    paths = [m.group(1) + m.group(2) for m in PATH_RE.finditer(code)]
    paths += list(expand_groups(code))
    for p in paths:
        seg = p.split("::")
        # `self` is `here` (module_of names a folder's mod.rs by the folder).
        base = list(here)
        head, rest = seg[0], seg[1:]
        if head == "crate":
            base = []
        elif head == "super":
            base = base[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        yield tuple(base + rest)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    graph_only = "--graph" in sys.argv
    found = 0
    for crate in args or DEFAULT:
        src = ROOT / crate
        files = [f for f in src.rglob("*.rs") if "bin" not in f.relative_to(src).parts]
        modules = {module_of(src, f): f for f in files}
        edges = defaultdict(list)  # (parent, child_a, child_b) -> [(file, target)]
        for mod, file in modules.items():
            code = strip(file.read_text())
            for target in references(code, mod):
                # the deepest module named
                while target and target not in modules:
                    target = target[:-1]
                if not target and () not in modules:
                    continue
                common = 0
                while common < min(len(mod), len(target)) and mod[common] == target[common]:
                    common += 1
                if common == len(mod) or common == len(target):
                    continue  # an ancestor or a descendant
                a, b = mod[: common + 1], target[: common + 1]
                edges[(mod[:common], a[-1], b[-1])].append((os.path.relpath(file, ROOT), "::".join(target)))
        by_parent = defaultdict(lambda: defaultdict(set))
        for (parent, a, b) in edges:
            by_parent[parent][a].add(b)
        for parent, g in sorted(by_parent.items()):
            name = crate + ":" + ("::".join(parent) or "crate")
            if graph_only:
                for a in sorted(g):
                    print(f"{name}: {a} -> {', '.join(sorted(g[a]))}")
            for scc in sccs(g):
                if len(scc) < 2:
                    continue
                found += 1
                print(f"cycle in {name}: {' <-> '.join(sorted(scc))}")
                for a in sorted(scc):
                    for b in sorted(g[a] & scc):
                        file, target = edges[(parent, a, b)][0]
                        print(f"  {a} -> {b}: {file} names {target}")
    if not found:
        print(f"no import cycles in {', '.join(args or DEFAULT)}")
    return 1 if found else 0


def sccs(g):
    """Tarjan's strongly connected components of the graph `g` (node -> successors)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    nodes = set(g) | {b for bs in g.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
