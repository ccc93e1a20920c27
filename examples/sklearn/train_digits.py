"""scikit-learn trial: an RBF support vector classifier on the digits dataset shipped inside
scikit-learn, scored by 3-fold cross-validation.

Prints a Katib-style ``accuracy=...`` line after each fold (the mean so far) for the StdOut
metrics collector; the Experiments pick the last one (metric strategy ``latest``).
``--log-c`` and ``--log-gamma`` are base-10 logarithms, so every search algorithm explores
the scales evenly whatever distributions it supports.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log-c", type=float, required=True, help="log10 of C")
    parser.add_argument("--log-gamma", type=float, required=True, help="log10 of gamma")
    parser.add_argument("--samples", type=int, default=900, help="digits used (speed)")
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x, y = x[: args.samples] / 16.0, y[: args.samples]
    model = SVC(C=10**args.log_c, gamma=10**args.log_gamma)
    scores = []
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for fold, (train, test) in enumerate(folds.split(x, y), start=1):
        model.fit(x[train], y[train])
        scores.append(model.score(x[test], y[test]))
        print(f"fold {fold}: accuracy={sum(scores) / len(scores):.6f}", flush=True)


if __name__ == "__main__":
    main()
