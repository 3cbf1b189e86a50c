#!/usr/bin/env python3
"""segmentation_models_pytorch as the reference of the training crate's model.

  smp_ref.py stub-cuda                 make the PyPI torch wheel importable without its CUDA
                                       library wheels (once per venv; setup.sh smp runs it)
  smp_ref.py dump       --encoder E [--decoder C,...] [--seed 0] [--size 64] --out F.safetensors
  smp_ref.py train-step --encoder E [--decoder C,...] [--batch 4 --size 256 --steps 10 --threads 2]
  smp_ref.py export     --encoder E [--decoder C,...] --out F.onnx [--logits]

The model is smp.Unet(E, encoder_weights=None, classes=3, decoder_channels=C) with weights
from torch.manual_seed(seed); BatchNorm running statistics and affine parameters are then
drawn from a second seeded generator, so that a parity test also checks how they are used
(--plain-init keeps PyTorch's defaults). E is efficientnet-b0 or efficientnet-b4; the
decoder default is smp's (256,128,64,32,16); the edge model uses 128,64,32,16,8.

dump        safetensors with the state dict (num_batches_tracked included), `input`
            (1x3xSxS, seeded normal) and `output` (its eval-mode logits); read by
            training/tests/parity.rs.
train-step  train mode, forward + cross-entropy + backward + AdamW (lr 1e-3, weight decay
            1e-2) on one fixed random batch; median ms after 2 warm-up steps; timed against
            the Rust step by bench/train_step.sh.
export      the eval model (softmax output `probs`, or raw `logits`) to ONNX opset 17 with
            dynamic N/H/W, input `image`; checked against torch when onnx and onnxruntime
            are importable.
The last stdout line of each command is one JSON record.

Reference tool for tests and benchmarks; not part of the product.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

STUB_MARK = "risk_seg_cuda_stub"


# ---------------------------------------------------------------------------- stub-cuda
def run_text(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.stdout + r.stderr


def needed_versions(elf):
    """{library: {version names}} from the 'Version needs' section of `readelf -V`."""
    out, lib, in_needs = {}, None, False
    for line in run_text("readelf", "-V", "-W", elf).splitlines():
        if "Version needs section" in line:
            in_needs = True
        elif in_needs and (m := re.search(r"File: (\S+)", line)):
            lib = m.group(1)
            out.setdefault(lib, set())
        elif in_needs and lib and (m := re.search(r"Name: (\S+)", line)):
            out[lib].add(m.group(1))
    return out


def undefined_versioned(elf):
    """{symbol: version} of the undefined, versioned dynamic symbols of `elf`."""
    out = {}
    for line in run_text("readelf", "--dyn-syms", "-W", elf).splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[6] == "UND" and "@" in cols[7]:
            name, version = cols[7].split("@", 1)
            out[name] = version.lstrip("@")
    return out


def cmd_stub_cuda(a):
    """The PyPI torch wheel is the CUDA build: libtorch_cuda.so and friends link cuBLAS,
    cuDNN, NCCL ... which come as separate wheels of several GB. The CPU code never calls
    them, but the dynamic loader wants every DT_NEEDED library, version and symbol. So for
    each library that `ldd` cannot find, a small shared object is compiled with that
    SONAME, the versions the torch libraries ask of it, and a dummy function for each
    symbol they import from it; it goes into torch/lib, which is on their RPATH. Symbols
    imported without a version (reported by `ldd -r`) are added in a second build."""
    site = a.site or next(p for p in sys.path if p.endswith("site-packages")
                          and os.path.isdir(os.path.join(p, "torch")))
    lib = os.path.join(site, "torch", "lib")
    for old in glob.glob(os.path.join(lib, "*.so*")):
        if STUB_MARK in run_text("nm", "-D", old):
            os.remove(old)
    elfs = glob.glob(os.path.join(site, "torch", "_C*.so"))
    elfs += [f for f in glob.glob(os.path.join(lib, "lib*.so")) if os.path.isfile(f)]
    missing = sorted({line.split()[0] for f in elfs for line in run_text("ldd", f).splitlines()
                      if "not found" in line})
    if not missing:
        print(json.dumps({"cmd": "stub-cuda", "stubbed": []}))
        return
    versions = {m: set() for m in missing}
    for f in elfs:
        for libname, names in needed_versions(f).items():
            if libname in versions:
                versions[libname] |= names
    owner = {v: m for m, names in versions.items() for v in names}
    symbols = {m: {} for m in missing}
    for f in elfs:
        for name, version in undefined_versioned(f).items():
            if version in owner:
                symbols[owner[version]][name] = version
    work = tempfile.mkdtemp(prefix="cuda-stub-")

    def build(unversioned):
        for m in missing:
            vers = sorted(versions[m]) or [m]
            table = dict(symbols[m])
            for name in unversioned:
                table.setdefault(name, vers[0])
            src, script = os.path.join(work, m + ".c"), os.path.join(work, m + ".map")
            with open(src, "w") as c, open(script, "w") as v:
                for i, version in enumerate(vers):
                    mark = f"{STUB_MARK}_{i}"
                    c.write(f"int {mark}(void) {{ return 0; }}\n")
                    names = [mark] + sorted(s for s, w in table.items() if w == version)
                    v.write(f"{version} {{ global: {'; '.join(names)}; }};\n")
                for name in sorted(table):
                    c.write(f"int {name}(void) {{ return 0; }}\n")
            subprocess.run(["gcc", "-shared", "-fPIC", "-o", os.path.join(lib, m), src,
                            f"-Wl,-soname,{m}", f"-Wl,--version-script,{script}"], check=True)

    build(set())
    unversioned = set()
    for f in elfs:
        unversioned |= set(re.findall(r"undefined symbol: (\w+)", run_text("ldd", "-r", f)))
    build(unversioned)
    left = sum(run_text("ldd", "-r", f).count("undefined symbol") for f in elfs)
    print(f"stub-cuda: {len(missing)} stand-in libraries in {lib} ({' '.join(missing)}), "
          f"{len(unversioned)} unversioned symbols, {left} unresolved", file=sys.stderr)
    print(json.dumps({"cmd": "stub-cuda", "stubbed": missing, "unresolved": left}))
    if left:
        sys.exit(1)


# ---------------------------------------------------------------------------- the model
def model(a):
    import torch
    import segmentation_models_pytorch as smp
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    decoder = [int(c) for c in a.decoder.split(",")]
    net = smp.Unet(a.encoder, encoder_weights=None, classes=3, decoder_channels=decoder,
                   encoder_depth=len(decoder))
    if not a.plain_init:
        g = torch.Generator().manual_seed(a.seed + 1)
        with torch.no_grad():
            for bn in net.modules():
                if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                    n = bn.num_features
                    bn.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                    bn.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                    bn.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                    bn.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return torch, net


def parameters(net):
    return sum(p.numel() for p in net.parameters())


def cmd_dump(a):
    torch, net = model(a)
    from safetensors.torch import save_file
    net.eval()
    x = torch.randn(1, 3, a.size, a.size, generator=torch.Generator().manual_seed(a.seed))
    with torch.no_grad():
        y = net(x)
    tensors = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    tensors["input"], tensors["output"] = x.contiguous(), y.contiguous()
    save_file(tensors, a.out, metadata={
        "encoder": a.encoder, "decoder": a.decoder, "seed": str(a.seed), "size": str(a.size),
        "output": "eval-mode logits", "plain_init": str(a.plain_init), "torch": torch.__version__})
    print(json.dumps({"cmd": "dump", "out": a.out, "encoder": a.encoder, "decoder": a.decoder,
                      "tensors": len(tensors), "params": parameters(net),
                      "output_mean": float(y.mean()), "output_std": float(y.std())}))


def cmd_train_step(a):
    torch, net = model(a)
    import torch.nn.functional as F
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    g = torch.Generator().manual_seed(a.seed)
    x = torch.randn(a.batch, 3, a.size, a.size, generator=g)
    y = torch.randint(0, 3, (a.batch, a.size, a.size), generator=g)
    ms, losses = [], []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        dt = (time.perf_counter() - t0) * 1000
        losses.append(float(loss))
        if step >= a.warmup:
            ms.append(dt)
        print(f"step {step}: {dt:.1f} ms, loss {losses[-1]:.4f}", file=sys.stderr)
    print(json.dumps({"cmd": "train-step", "encoder": a.encoder, "decoder": a.decoder,
                      "batch": a.batch, "size": a.size, "threads": a.threads,
                      "steps": a.steps, "warmup": a.warmup,
                      "median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1),
                      "max_ms": round(max(ms), 1), "first_loss": losses[0],
                      "last_loss": losses[-1], "params": parameters(net),
                      "torch": torch.__version__}))


def cmd_export(a):
    torch, net = model(a)
    net.eval()
    name = "logits" if a.logits else "probs"

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, image):
            y = self.net(image)
            return y if a.logits else torch.softmax(y, dim=1)

    wrapped = Exported().eval()
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(a.seed))
    axes = {0: "N", 2: "H", 3: "W"}
    torch.onnx.export(wrapped, (x,), a.out, input_names=["image"], output_names=[name],
                      dynamic_axes={"image": axes, name: axes}, opset_version=17,
                      dynamo=False, do_constant_folding=True)
    rec = {"cmd": "export", "out": a.out, "output": name, "encoder": a.encoder,
           "bytes": os.path.getsize(a.out)}
    try:
        import onnxruntime
    except ImportError:
        rec["checked"] = "no onnxruntime in this venv"
    else:
        with torch.no_grad():
            want = wrapped(x).numpy()
        got = onnxruntime.InferenceSession(a.out, providers=["CPUExecutionProvider"]).run(
            None, {"image": x.numpy()})[0]
        rec["max_abs_diff"] = float(abs(want - got).max())
        if rec["max_abs_diff"] > 1e-4:
            print(json.dumps(rec))
            sys.exit("smp_ref.py export: onnxruntime and torch differ by more than 1e-4")
    print(json.dumps(rec))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stub-cuda", help="stand-ins for the CUDA libraries torch links")
    s.add_argument("--site", help="the site-packages holding torch (default: this Python's)")
    s.set_defaults(fn=cmd_stub_cuda)

    def model_args(s):
        s.add_argument("--encoder", required=True, help="efficientnet-b0 or efficientnet-b4")
        s.add_argument("--decoder", default="256,128,64,32,16", help="decoder channels")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--plain-init", action="store_true",
                       help="keep BatchNorm at PyTorch's defaults")
        s.add_argument("--threads", type=int, default=2)

    s = sub.add_parser("dump", help="state dict, input and logits as safetensors")
    model_args(s)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_dump)
    s = sub.add_parser("train-step", help="time a training step")
    model_args(s)
    s.add_argument("--batch", type=int, default=4)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--steps", type=int, default=10)
    s.add_argument("--warmup", type=int, default=2)
    s.set_defaults(fn=cmd_train_step)
    s = sub.add_parser("export", help="ONNX export of the eval model")
    model_args(s)
    s.add_argument("--out", required=True)
    s.add_argument("--logits", action="store_true", help="raw logits named 'logits'")
    s.set_defaults(fn=cmd_export)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
