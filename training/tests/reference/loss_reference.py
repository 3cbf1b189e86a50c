#!/usr/bin/env python3
"""Reference values of training/tests/loss.rs, computed with PyTorch (float32).

    .deps/smp-venv/bin/python training/tests/reference/loss_reference.py

Inputs are closed-form (no RNG), so the Rust test rebuilds them exactly:
  class logits   (2, 3, 3, 4): 3 sin(0.7 i + 0.3), i = flat index
  ordinal logits (2, 2, 3, 4): 2 cos(0.9 i) - 0.5
  labels         (2, 3, 4):    LABELS below (255 = nodata)
Definitions (docs/spec.md, "Training"):
  focal  = mean over labelled pixels of -alpha_y (1 - p_y)^gamma log p_y, p = softmax
  coral  = mean over labelled pixels of sum_k BCE-with-logits(z_k, 1[y > k]), k = 0, 1
           (coral-pytorch's coral_loss: summed over the K-1 levels)
  total  = focal + 0.3 coral
"""
import torch
import torch.nn.functional as F

LABELS = [0, 1, 2, 255, 2, 2, 1, 0, 0, 0, 255, 1,
          2, 0, 1, 1, 255, 255, 0, 2, 1, 0, 2, 0]


def inputs():
    i = torch.arange(2 * 3 * 3 * 4, dtype=torch.float32)
    logits = (3 * torch.sin(0.7 * i + 0.3)).reshape(2, 3, 3, 4)
    j = torch.arange(2 * 2 * 3 * 4, dtype=torch.float32)
    ordinal = (2 * torch.cos(0.9 * j) - 0.5).reshape(2, 2, 3, 4)
    y = torch.tensor(LABELS, dtype=torch.int64).reshape(2, 3, 4)
    return logits, ordinal, y


def focal(logits, y, alpha, gamma, ignore=255):
    valid = y != ignore
    t = torch.where(valid, y, torch.zeros_like(y))
    logp = F.log_softmax(logits, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
    a = torch.tensor(alpha, dtype=logits.dtype)[t]
    loss = -a * (1 - logp.exp()) ** gamma * logp
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def coral(ordinal, y, ignore=255):
    valid = y != ignore
    levels = torch.stack([(y > k) for k in range(ordinal.shape[1])], dim=1).float()
    bce = F.binary_cross_entropy_with_logits(ordinal, levels, reduction="none").sum(1)
    return (bce * valid).sum() / valid.sum().clamp(min=1)


def fmt(t):
    return ", ".join(f"{v:.8e}" for v in t.flatten().tolist())


def main():
    logits, ordinal, y = inputs()
    alpha, gamma = [0.4, 2.5, 2.0], 2.5
    f = focal(logits, y, alpha, gamma)
    ce = F.cross_entropy(logits, y, ignore_index=255)
    assert torch.allclose(focal(logits, y, [1.0, 1.0, 1.0], 0.0), ce)
    c = coral(ordinal, y)
    lg = logits.clone().requires_grad_(True)
    og = ordinal.clone().requires_grad_(True)
    total = focal(lg, y, alpha, gamma) + 0.3 * coral(og, y)
    total.backward()
    print(f"torch {torch.__version__}")
    print(f"focal (gamma 2.5, alpha 0.4/2.5/2.0) = {f.item():.8e}")
    print(f"focal (gamma 2, alpha 1)            = {focal(logits, y, [1.0] * 3, 2.0).item():.8e}")
    print(f"cross_entropy (ignore 255)          = {ce.item():.8e}")
    print(f"coral                               = {c.item():.8e}")
    print(f"total = focal + 0.3 coral           = {total.item():.8e}")
    print(f"d total / d class logits = [{fmt(lg.grad)}]")
    print(f"d total / d ordinal logits = [{fmt(og.grad)}]")
    none = torch.full_like(y, 255)
    print(f"all nodata: focal {focal(logits, none, alpha, gamma).item()}, coral {coral(ordinal, none).item()}")


if __name__ == "__main__":
    main()
