"""PyTorch counterpart of `deno task bench`, for same-run comparisons.

A small, independent PyTorch version of the three training steps, written from
this project's description of the published method (REFERENCE.md), not from
the published scripts: a DINOv2 ViT-S/14-sized backbone with random weights
(frozen), Rein after every block, linear heads, Adam, and the CUFIT step
(LPM + IAM in one Adam, LAM in another, agreement masks from argmax).

It computes what a plain PyTorch implementation computes: every token through
every block, autograd for the backward. `bench:all --torch PYTHON` runs it
between the project's own runs and prints the ratios.

Usage: python3 torch_bench.py --method cufit [--img 224] [--batch 16]
[--steps 2] [--warmup 1] [--threads 2] [--dim 384 --depth 12 --heads 6
--mlp 1536 --classes 7 --seed 0]. The last stdout line is JSON with the keys
of `deno task bench --json`:
{"method","img","batch","backend","images_per_s","peak_rss_mb"}; the line
before it is {"details": {"cpu_seconds"}} (CPU time of the timed steps).
"""

import argparse
import json
import math
import os
import resource
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(prog="torch_bench.py")
    p.add_argument("--method", required=True, choices=["linear", "rein", "cufit"])
    for name, default in [
        ("img", 112), ("batch", 16), ("steps", 5), ("warmup", 1),
        ("dim", 384), ("depth", 12), ("heads", 6), ("mlp", 0),
        ("classes", 7), ("seed", 0), ("threads", 0), ("tokens", 100),
    ]:
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args(argv)
    if a.img < 14 or a.batch < 1 or a.steps < 1 or a.warmup < 0:
        p.error("--img must be >= 14, --batch and --steps >= 1, --warmup >= 0")
    if a.dim % a.heads != 0:
        p.error(f"--heads must divide --dim ({a.dim}), got {a.heads}")
    return a


ARGS = parse_args(sys.argv[1:])
# OpenBLAS and OpenMP read their thread counts when the library loads.
THREADS = ARGS.threads or os.cpu_count() or 1
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)

import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(THREADS)


class Block(nn.Module):
    """Pre-norm ViT block with LayerScale: x + ls1*attn(n1(x)), x + ls2*mlp(n2(x))."""

    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ls1 = nn.Parameter(torch.full((dim,), 0.1))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.ls2 = nn.Parameter(torch.full((dim,), 0.1))

    def attention(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, K, N, d]
        scores = (q * (d // self.heads) ** -0.5) @ k.transpose(-2, -1)
        out = scores.softmax(dim=-1) @ v  # [B, K, N, d]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, x):
        x = x + self.ls1 * self.attention(self.norm1(x))
        return x + self.ls2 * self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Backbone(nn.Module):
    """ViT/14 with a CLS token and position embeddings for the input grid."""

    def __init__(self, dim, depth, heads, hidden, grid):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 14, 14)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        # The reference resizes a 37 x 37 grid to the input's; the cost of
        # that resize is outside the step, so a grid-sized table stands in.
        self.pos = nn.Parameter(torch.randn(1, 1 + grid * grid, dim) * 0.02)
        self.blocks = nn.ModuleList(
            [Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def embed(self, images):
        x = self.patch(images).flatten(2).transpose(1, 2)  # [B, hw, D]
        cls = self.cls.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + self.pos

    def features(self, images, rein=None):
        """All tokens after the last block (and Rein), before the final norm."""
        x = self.embed(images)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if rein is not None:
                x = rein(x, i)
        return x


class Rein(nn.Module):
    """Rein: learnable tokens refine the patch tokens after each block."""

    def __init__(self, dim, depth, tokens):
        super().__init__()
        bound = math.sqrt(6.0 / (3 * 14 * 14 + dim))
        self.learnable_tokens = nn.Parameter(
            torch.empty(depth, tokens, dim).uniform_(-bound, bound))
        self.scale = nn.Parameter(torch.tensor(1e-3))
        self.mlp_token2feat = nn.Linear(dim, dim)
        self.mlp_delta_f = nn.Linear(dim, dim)

    def forward(self, x, layer):
        t = self.learnable_tokens[layer]  # [M, D]
        feats = x[:, 1:, :]  # [B, N-1, D]
        attn = (feats @ t.t() / math.sqrt(x.shape[-1])).softmax(dim=-1)
        delta = attn[:, :, 1:] @ self.mlp_token2feat(t[1:])
        refined = feats + self.scale * self.mlp_delta_f(delta + feats)
        return torch.cat([x[:, :1, :], refined], dim=1)


def adam(params):
    return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=1e-5)


def make_step(a, backbone):
    """The method's training step as a closure over its modules and optimizers."""
    d, k = a.dim, a.classes
    if a.method == "linear":
        head = nn.Linear(d, k)
        opt = adam(head.parameters())

        def step(images, labels):
            with torch.no_grad():
                feats = backbone.norm(backbone.features(images)[:, 0])
            loss = F.cross_entropy(head(feats), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    if a.method == "rein":
        rein = Rein(d, a.depth, a.tokens)
        head = nn.Linear(d, k)
        opt = adam(list(rein.parameters()) + list(head.parameters()))

        def step(images, labels):
            logits = head(backbone.features(images, rein)[:, 0])
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    # CUFIT: model 1 = LPM + IAM (one Adam), model 2 = LAM (its own Adam).
    lpm = nn.Linear(d, k)
    rein1, iam = Rein(d, a.depth, a.tokens), nn.Linear(d, k)
    rein2, lam = Rein(d, a.depth, a.tokens), nn.Linear(d, k)
    opt1 = adam(list(lpm.parameters()) + list(rein1.parameters()) +
                list(iam.parameters()))
    opt2 = adam(list(rein2.parameters()) + list(lam.parameters()))

    def step(images, labels):
        with torch.no_grad():
            cls0 = backbone.features(images)[:, 0]
        o0 = lpm(cls0)
        o1 = iam(backbone.features(images, rein1)[:, 0])
        o2 = lam(backbone.features(images, rein2)[:, 0])
        a1 = (o0.argmax(dim=1) == labels).float().detach()
        a2 = (o1.argmax(dim=1) == labels).float().detach()
        loss1 = F.cross_entropy(o0, labels) + \
            (a1 * F.cross_entropy(o1, labels, reduction="none")).mean()
        loss2 = (a2 * F.cross_entropy(o2, labels, reduction="none")).mean()
        opt1.zero_grad()
        opt2.zero_grad()
        loss1.backward()
        loss2.backward()
        opt1.step()
        opt2.step()
    return step


def peak_rss_mb():
    """This process's peak resident set size in MiB.

    Linux's VmHWM starts afresh at exec; ru_maxrss can carry the peak of the
    parent that forked this process.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2 ** 20 if sys.platform == "darwin" else 1024)


def main():
    a = ARGS
    torch.manual_seed(a.seed)
    grid = a.img // 14
    backbone = Backbone(a.dim, a.depth, a.heads, a.mlp or 4 * a.dim, grid)
    for p in backbone.parameters():
        p.requires_grad_(False)
    step = make_step(a, backbone)
    images = torch.randn(a.batch, 3, a.img, a.img)
    labels = torch.randint(0, a.classes, (a.batch,))
    seconds = []
    cpu = 0.0
    for i in range(a.warmup + a.steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        step(images, labels)
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            seconds.append(dt)
            cpu += time.process_time() - c0
        label = "warm-up" if i < a.warmup else f"step {i - a.warmup + 1}/{a.steps}"
        print(f"{label}: {dt:.3f} s", file=sys.stderr)
    rss_mb = peak_rss_mb()
    # CPU seconds of the timed steps, all threads (as `deno task bench`).
    print(json.dumps({"details": {"cpu_seconds": round(cpu, 3)}}))
    print(json.dumps({
        "method": a.method,
        "img": a.img,
        "batch": a.batch,
        "backend": f"torch {torch.__version__.split('+')[0]}",
        "images_per_s": round(a.batch * a.steps / sum(seconds), 3),
        "peak_rss_mb": round(rss_mb, 1),
    }))


if __name__ == "__main__":
    main()
