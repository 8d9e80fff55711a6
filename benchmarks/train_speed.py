"""Training images/s: `resdsl train` against the usual hand-written PyTorch CIFAR loop, same model and data.

The reference is what CIFAR tutorials do: a Dataset over the uint8 images whose __getitem__ pads,
crops and flips one image in Python (torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip
+ ToTensor/Normalize, written in plain torch), a shuffling DataLoader of batch 128 (num_workers 0 and
2), the model in the default (contiguous) memory format, SGD with momentum and weight decay.
`resdsl train` keeps the uint8 data on the device, augments whole batches with one gather, and runs
channels_last. Both train the generated model of specs/cifar20.rd on the same synthetic 3x32x32
images for the same number of iterations after the same warm-up; the ratio is resdsl / best reference.

    .venv/bin/python benchmarks/train_speed.py [--iterations 40] [--rounds 2] [--spec specs/cifar20.rd]

Also measured once each: `--amp bf16` (autocast; fast on CPUs with AMX/AVX512-BF16) and `--compile`
(the first window, which holds the compilation, is not counted).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def reference_images_per_s(model_source: str, data, iterations: int, warmup: int, workers: int) -> float:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Dataset

    from resdsl.backends.pytorch.verify import load_module

    class CifarTrain(Dataset):
        def __init__(self, x, y) -> None:
            self.x, self.y = x, y
            self.mean = x.float().mean(0) / 255.0  # per-pixel mean, as the paper

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i):
            img = self.x[i].float() / 255.0 - self.mean  # ToTensor + mean subtraction
            img = F.pad(img, (4, 4, 4, 4))  # RandomCrop(32, padding=4)
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            img = img[:, dy : dy + 32, dx : dx + 32]
            if torch.rand(()) < 0.5:  # RandomHorizontalFlip
                img = img.flip(-1)
            return img, self.y[i]

    torch.manual_seed(0)
    model = load_module(model_source).build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loader = DataLoader(
        CifarTrain(data["x_train"], data["y_train"]),
        batch_size=128,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    model.train()
    done, start = 0, None
    while done < warmup + iterations:
        for x, y in loader:
            if done == warmup:
                start = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == warmup + iterations:
                break
    return iterations * 128 / (time.perf_counter() - start)


def resdsl_images_per_s(spec: str, sets: list[str], iterations: int, warmup: int, extra: list[str]) -> float:
    """`resdsl train` itself (a subprocess); images/s of the iterations after the warm-up, from metrics.csv."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "resdsl", "train", spec, "--dataset", "synthetic", "--out", str(out), "-q"]
        cmd += ["--iterations", str(warmup + iterations), "--eval-every", str(warmup), "--batch", "128", *extra]
        for s in sets:
            cmd += ["--set", s]
        subprocess.run(cmd, check=True, cwd=ROOT)
        lines = (out / "metrics.csv").read_text().splitlines()
        header = lines[0].split(",")
        col = header.index("images_per_s")
        # rows: warm-up window, then windows of `warmup` iterations; average the later ones weighted by time
        rates = [float(line.split(",")[col]) for line in lines[2:]]
        return len(rates) / sum(1 / r for r in rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="specs/cifar20.rd")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import torch

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets
    from resdsl.train import data

    ir = load_network(ROOT / args.spec, parse_sets(args.sets))
    source = render_model(ir, args.spec)
    synthetic = data.synthetic(tuple(ir.input_shape), ir.classes)
    cpu = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    print(
        f"# {ir.name} ({ir.totals.params:,} params), batch 128, {args.iterations} iterations after "
        f"{args.warmup} warm-up; {torch.get_num_threads()} threads, {cpu}, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )
    results: dict[str, float] = {}

    def keep_best(name: str, rate: float) -> None:
        results[name] = max(rate, results.get(name, 0.0))

    for _ in range(args.rounds):  # interleaved rounds, best of each: the machine is shared
        for workers in (0, 2):
            rate = reference_images_per_s(source, synthetic, args.iterations, args.warmup, workers)
            keep_best(f"reference (DataLoader, {workers} workers)", rate)
        for name, extra in (("resdsl train", []), ("resdsl train --no-channels-last", ["--no-channels-last"])):
            keep_best(name, resdsl_images_per_s(args.spec, args.sets, args.iterations, args.warmup, extra))
    for name, extra in (("resdsl train --amp bf16", ["--amp", "bf16"]), ("resdsl train --compile", ["--compile"])):
        keep_best(name, resdsl_images_per_s(args.spec, args.sets, args.iterations, args.warmup, extra))
    best_ref = max(v for k, v in results.items() if k.startswith("reference"))
    print("| loop | images/s | vs best reference |")
    print("|---|---:|---:|")
    for name, rate in results.items():
        print(f"| {name} | {rate:.0f} | {rate / best_ref:.2f}x |")
    print(json.dumps({k: round(v, 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
