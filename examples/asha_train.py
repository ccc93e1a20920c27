"""ASHA example trial: a learning curve over epochs, one `loss=...` line per epoch.

The loss falls towards a final value set by the learning rate (best near lr = 0.01); each
epoch takes a moment, so that asynchronous successive halving can stop the poor trials
early. The StdOut collector numbers the lines 0, 1, 2...: the steps asha counts.
"""

from __future__ import annotations

import argparse
import math
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=27)
    args = parser.parse_args()
    final = (math.log10(args.lr) + 2) ** 2 + 0.1
    for epoch in range(1, args.epochs + 1):
        print(f"epoch {epoch}: loss={final + 2.0 / epoch:.6f}", flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
