"""A toy model for examples/multiobjective.yaml: a wider network reaches a lower loss but
answers more slowly, so no single setting is best in both; prints `loss=...` and
`latency=...` lines for the StdOut collector."""

from __future__ import annotations

import argparse
import math


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    args = parser.parse_args()
    # The loss is lowest near lr = 0.01 and falls with width; latency grows with width.
    loss = 1.0 / args.width + 0.1 * (math.log10(args.lr) + 2.0) ** 2
    latency = 0.5 + 0.02 * args.width
    for epoch in range(1, 4):
        print(f"epoch {epoch}: loss={loss * (1 + 1 / epoch):.6f}")
    print(f"loss={loss:.6f}")
    print(f"latency={latency:.6f}")


if __name__ == "__main__":
    main()
