"""The Python API on a laptop: tune a function with TPE, 12 trials, 3 at a time.

    python examples/python_api.py [--db sqlite:///tuner.db]

Each trial runs ``quadratic`` in its own process (its source travels in the trial's
command, so the same Experiment runs as Kubernetes Jobs with tuner's image). Results land
in the database, where ``tuner get trials python-api-quadratic`` shows them too. Running the
script again shows the stored result; pass another ``--db`` (or delete the experiment with
``tuner delete experiment python-api-quadratic``) to tune again.
"""

from __future__ import annotations

import argparse

from tuner import Categorical, Double, Experiment, Int


def quadratic(params: dict) -> dict:
    """A bowl with its minimum 0 at x=1.5, y=-2 on the "bowl" shape."""
    scale = 1.0 if params["shape"] == "bowl" else 0.5
    loss = (params["x"] - 1.5) ** 2 + scale * (params["y"] + 2) ** 2 + (params["shape"] != "bowl")
    return {"loss": loss, "distance": abs(params["x"] - 1.5) + abs(params["y"] + 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///tuner.db", help="database URL")
    args = parser.parse_args()

    experiment = Experiment(
        "python-api-quadratic",
        parameters={
            "x": Double(-5.0, 5.0),
            "y": Int(-4, 4),
            "shape": Categorical(["bowl", "tilted"]),
        },
        objective="loss",
        goal_type="minimize",
        additional_metrics=["distance"],
        algorithm="tpe",
        algorithm_settings={"random_state": 7, "n_startup_trials": 5},
        max_trials=12,
        parallel_trials=3,
        objective_fn=quadratic,
    )
    result = experiment.run(db=args.db)
    print(f"experiment {result.name}: {result.status.value} ({result.reason})")
    best = result.best_trial
    if best is None:
        print("no trial reported the objective")
        return
    print(f"best trial {best.name}: loss={best.objective:.4f} parameters={best.parameters}")


if __name__ == "__main__":
    main()
