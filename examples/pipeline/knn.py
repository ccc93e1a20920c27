"""The example pipeline's model: k-nearest-neighbours on the prepare step's dataset, stdlib only.

As a trial it prints Katib-style `accuracy=...` on the validation split; with `--model-out`
(the train step) it also writes the fitted model as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

Point = tuple[float, float]


def predict(train: list[dict], point: Point, k: int, weights: str) -> int:
    """The class the `k` nearest training points vote for; `distance` weighs votes by 1/d."""
    nearest = sorted((math.dist(point, (row["x"], row["y"])), row["label"]) for row in train)[:k]
    votes: dict[int, float] = {}
    for distance, label in nearest:
        weight = 1.0 / max(distance, 1e-12) if weights == "distance" else 1.0
        votes[label] = votes.get(label, 0.0) + weight
    # On a tie the class seen first, i.e. the one with the nearest point, wins.
    return max(votes, key=lambda label: votes[label])


def accuracy(train: list[dict], test: list[dict], k: int, weights: str) -> float:
    """Share of `test` rows whose label the model predicts."""
    hits = sum(predict(train, (row["x"], row["y"]), k, weights) == row["label"] for row in test)
    return hits / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="dataset JSON from prepare")
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--weights", choices=["uniform", "distance"], required=True)
    parser.add_argument("--model-out", type=Path, help="write the fitted model here")
    args = parser.parse_args()
    dataset = json.loads(args.data.read_text())
    score = accuracy(dataset["train"], dataset["validation"], args.k, args.weights)
    print(f"accuracy={score:.6f}", flush=True)
    if args.model_out is not None:
        # k-NN keeps its training set: the model is the parameters plus the points.
        model = {"k": args.k, "weights": args.weights, "train": dataset["train"]}
        args.model_out.write_text(json.dumps({**model, "validation_accuracy": score}))


if __name__ == "__main__":
    main()
