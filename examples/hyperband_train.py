"""Hyperband example trial: a learning curve whose length is the resource (epochs).

Prints one Katib-style `loss=...` line per epoch; the loss falls with the epochs towards a
floor set by the learning rate and momentum (best near lr 0.03, momentum 0.8).
"""

from __future__ import annotations

import argparse


def loss(lr: float, momentum: float, epoch: int) -> float:
    floor = 100 * (lr - 0.03) ** 2 + (momentum - 0.8) ** 2
    return floor + 1.0 / epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--momentum", type=float, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    args = parser.parse_args()
    for epoch in range(1, args.epochs + 1):
        print(f"loss={loss(args.lr, args.momentum, epoch):.6f}", flush=True)


if __name__ == "__main__":
    main()
