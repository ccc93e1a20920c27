"""PBT example trial: a toy learning-rate schedule problem that checkpoints its progress.

Katib's simple-pbt trial in spirit (after Ray Tune's PBT example): accuracy grows fastest
when the learning rate follows a triangle over the accuracy itself, so no fixed rate does
well, while a population that copies its best members' progress and perturbs their rates
does. The trial resumes from ``<checkpoint>/training.json`` when its parent left one there
(the controller copies the parent's directory before the trial starts), trains a few
epochs and saves. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random

CHECKPOINT_FILE = "training.json"


def optimal_lr(accuracy: float) -> float:
    """The triangle: 0.001 at accuracy 0, 0.01 at 50, back to 0.001 at 100."""
    midpoint = 50.0
    if accuracy < midpoint:
        best = 0.01 * accuracy / midpoint
    else:
        best = 0.01 - 0.01 * (accuracy - midpoint) / midpoint
    return min(0.01, max(0.001, best))


def step(accuracy: float, lr: float, rng: random.Random) -> float:
    """One epoch: a rate within a factor of 3 of the optimum helps, a far larger one hurts."""
    best = optimal_lr(accuracy)
    ratio = max(lr, best) / max(min(lr, best), 1e-12)
    if ratio < 3:
        accuracy += rng.random() / ratio
    elif lr > best:
        accuracy -= (ratio - 3) * rng.random()
    accuracy += 2 * rng.gauss(0.0, 1.0)
    return max(0.0, min(100.0, accuracy))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (resume, save)")
    args = parser.parse_args()

    path = os.path.join(args.checkpoint, CHECKPOINT_FILE)
    state = {"epoch": 0, "accuracy": 0.0}
    if os.path.exists(path):
        with open(path) as f:
            state = json.load(f)
        print(f"resumed from epoch {state['epoch']} at accuracy {state['accuracy']:.2f}")
    rng = random.Random(f"{args.lr}-{state['epoch']}")
    for _ in range(args.epochs):
        state["accuracy"] = step(state["accuracy"], args.lr, rng)
        state["epoch"] += 1
        print(f"epoch {state['epoch']}")
        print(f"Validation-accuracy={state['accuracy'] / 100:.4f}", flush=True)
    os.makedirs(args.checkpoint, exist_ok=True)
    with open(path, "w") as f:
        json.dump(state, f)


if __name__ == "__main__":
    main()
