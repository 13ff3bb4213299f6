"""Build the small MNIST network that ``make demo`` verifies (robustmip/assets/demo_mlp_32_32.npz).

A 784-32-32-10 ReLU MLP, PGD-adversarially trained (eps 0.05) on the embedded MNIST subset, so it
can be rebuilt offline from a clean checkout: ``.venv/bin/python scripts/make_demo_net.py``.
Prints its clean and PGD accuracy on the embedded test images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from robustmip.attacks import PGDConfig, clean_accuracy, robust_accuracy
from robustmip.data import load_dataset
from robustmip.io import from_torch
from robustmip.models import build_model
from robustmip.training import train

ASSET = Path(__file__).resolve().parents[1] / "robustmip" / "assets" / "demo_mlp_32_32.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ASSET)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train_set, test_set = load_dataset("train", "embedded"), load_dataset("test", "embedded")
    model = build_model("mlp-32-32", seed=args.seed)
    attack = PGDConfig(eps=0.05, steps=10, step_size=0.0125)
    train(model, (train_set.images, train_set.labels), epochs=args.epochs, seed=args.seed, adv=attack,
          eps_ramp_epochs=3, device="cpu", progress=False)
    model.eval()
    clean = clean_accuracy(model, test_set.images, test_set.labels)
    robust = robust_accuracy(model, test_set.images, test_set.labels, 0.05, steps=40, restarts=2, seed=args.seed)
    from_torch(model, input_shape=(1, 28, 28)).save(args.out)
    print(f"wrote {args.out}: clean accuracy {clean:.4f}, PGD(0.05) accuracy {robust:.4f} on {len(test_set)} embedded test images")


if __name__ == "__main__":
    main()
