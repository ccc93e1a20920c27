"""Quickstart trial: evaluates a small surface and prints Katib-style `loss=...` lines.

Runs in well under a second; the controller reads its stdout as the metrics source.
"""

from __future__ import annotations

import argparse


def surface(x: float, y: int, shape: str) -> float:
    """A bowl with its minimum at (1, -2); the valley variant is flatter along y."""
    scale = 1.0 if shape == "bowl" else 0.25
    return (x - 1.0) ** 2 + scale * (y + 2) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--x", type=float, required=True)
    parser.add_argument("--y", type=int, required=True)
    parser.add_argument("--shape", choices=["bowl", "valley"], required=True)
    args = parser.parse_args()
    final = surface(args.x, args.y, args.shape)
    # A few "epochs" converging on the final value, so intermediate steps exist.
    for epoch in range(1, 4):
        print(f"epoch {epoch}")
        print(f"loss={final * (1 + 1.0 / epoch):.6f}", flush=True)
    print(f"loss={final:.6f}")


if __name__ == "__main__":
    main()
