"""Kubeflow Pipelines v2 example: prepare a dataset, tune a k-NN model on it, train with the best.

    python examples/pipeline/pipeline.py --compile out.yaml     # IR YAML for a KFP cluster
    python examples/pipeline/pipeline.py --run [--root DIR]     # here, with kfp.local

The tune step is `tuner.pipeline.tune`: it runs experiment.yaml (trials are `knn.py`, started by
the local executor inside the step) and hands the best parameters to the train step.
"""

# No `from __future__ import annotations`: kfp reads the component annotations as objects.

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from kfp import compiler, dsl, local
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from tuner.pipeline import DEFAULT_IMAGE, tune_component

HERE = Path(__file__).resolve().parent

# Every step needs tuner and kfp in its image (nothing is pip-installed when a step starts),
# and on a cluster the image must also hold this folder at the path the steps are given.
IMAGE = DEFAULT_IMAGE
tune = tune_component(IMAGE)


# A pipeline's body runs in this process when the pipeline is defined, so unlike a
# component's it may use names of this module, such as this return type.
class PipelineOutputs(NamedTuple):
    parameters_json: str
    model: Model


@dsl.component(base_image=IMAGE, packages_to_install=[], install_kfp_package=False)
def prepare(experiment_template: str, samples: int, seed: int, data: Output[Dataset]) -> NamedTuple(
    "PrepareOutputs", [("experiment", str)]
):  # type: ignore[valid-type]
    """Write two noisy interleaved half-moons (train and validation splits) to `data`, and
    return the Experiment with `--data=<that file>` added to its trial's arguments."""
    import json
    import math
    import random

    import yaml

    rng = random.Random(seed)
    rows = []
    for i in range(samples):
        label = i % 2
        angle = rng.uniform(0.0, math.pi)
        x, y = math.cos(angle), math.sin(angle)
        if label == 1:
            x, y = 1.0 - x, 0.5 - y
        rows.append({"x": x + rng.gauss(0, 0.45), "y": y + rng.gauss(0, 0.45), "label": label})
    cut = samples * 3 // 4
    with open(data.path, "w", encoding="utf-8") as f:
        json.dump({"train": rows[:cut], "validation": rows[cut:]}, f)

    experiment = yaml.safe_load(experiment_template)
    template = experiment["spec"]["trialTemplate"]
    pod = template["trialSpec"]["spec"]["template"]["spec"]
    primary = next(c for c in pod["containers"] if c["name"] == template["primaryContainerName"])
    primary.setdefault("args", []).append(f"--data={data.path}")
    return (yaml.safe_dump(experiment, sort_keys=False),)


@dsl.component(base_image=IMAGE, packages_to_install=[], install_kfp_package=False)
def train(
    data: Input[Dataset],
    best_parameters_json: str,
    model_script: str,
    model: Output[Model],
    metrics: Output[Metrics],
) -> NamedTuple("TrainOutputs", [("parameters_json", str)]):  # type: ignore[valid-type]
    """Fit the model with the tuned parameters; return the parameters it was given."""
    import json
    import subprocess
    import sys

    parameters = json.loads(best_parameters_json)
    options = [f"--{name}={value}" for name, value in sorted(parameters.items())]
    argv = [sys.executable, model_script, f"--data={data.path}", f"--model-out={model.path}"]
    subprocess.run(argv + options, check=True)
    with open(model.path, encoding="utf-8") as f:
        fitted = json.load(f)
    metrics.log_metric("validation_accuracy", fitted["validation_accuracy"])
    model.metadata["parameters"] = best_parameters_json
    return (json.dumps(parameters, sort_keys=True),)


@dsl.pipeline(name="tune-and-train", description="prepare data, tune k-NN, train with the best")
def tune_and_train(
    experiment_template: str,
    db_url: str = "",
    samples: int = 200,
    seed: int = 0,
    timeout_seconds: int = 600,
    model_script: str = str(HERE / "knn.py"),
) -> PipelineOutputs:
    prepared = prepare(experiment_template=experiment_template, samples=samples, seed=seed)
    tuned = tune(
        experiment=prepared.outputs["experiment"],
        db_url=db_url,
        executor="local",
        timeout_seconds=timeout_seconds,
    )
    trained = train(
        data=prepared.outputs["data"],
        best_parameters_json=tuned.outputs["best_parameters_json"],
        model_script=model_script,
    )
    return PipelineOutputs(trained.outputs["parameters_json"], trained.outputs["model"])


def experiment_template(path: Path = HERE / "experiment.yaml", trial_dir: Path = HERE) -> str:
    """experiment.yaml with its trial container's workingDir set to `trial_dir` (knn.py's).

    Returned as one-line JSON (which is YAML too): kfp 2.x copies pipeline input defaults
    into a comment header of the compiled file unescaped, so a multi-line default would make
    the compiled YAML unparseable.
    """
    experiment = yaml.safe_load(path.read_text(encoding="utf-8"))
    template = experiment["spec"]["trialTemplate"]
    for container in template["trialSpec"]["spec"]["template"]["spec"]["containers"]:
        if container["name"] == template["primaryContainerName"]:
            container["workingDir"] = str(trial_dir)
    return json.dumps(experiment)


def compile_pipeline(package_path: str | Path, template: str | None = None) -> None:
    """Write the pipeline's IR YAML, with the Experiment as the default of its input."""
    compiler.Compiler().compile(
        tune_and_train,
        str(package_path),
        pipeline_parameters={"experiment_template": template or experiment_template()},
    )


def run_locally(pipeline_root: str | Path, db_url: str = "", template: str | None = None) -> Any:
    """Run the pipeline in this Python environment (kfp.local, one subprocess per step).

    Returns the pipeline task (its `.outputs` hold `parameters_json` and `model`); raises
    RuntimeError naming the failed step when a step fails.
    """
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    with warnings.catch_warnings():
        # kfp.local warns for every image whose name lacks "python"; ours has Python.
        warnings.filterwarnings("ignore", ".*non-Python base image", RuntimeWarning)
        return tune_and_train(experiment_template=template or experiment_template(), db_url=db_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--compile", metavar="PATH", type=Path, help="write the IR YAML here")
    action.add_argument("--run", action="store_true", help="run here with kfp.local")
    parser.add_argument("--root", type=Path, help="kfp.local pipeline root (default: new tmp dir)")
    parser.add_argument(
        "--db", default="",
        help="tuner database URL (default: ROOT/tuner.db; a second run with the same database is "
        "refused, as its dataset path differs: use a new --root or --db per run)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.compile is not None:
        compile_pipeline(args.compile)
        print(f"wrote {args.compile}")
        return 0
    root = args.root or Path(tempfile.mkdtemp(prefix="tune-and-train-"))
    db_url = args.db or f"sqlite:///{root.resolve() / 'tuner.db'}"
    task = run_locally(root, db_url)
    print(json.dumps({"parameters": json.loads(task.outputs["parameters_json"]),
                      "model": task.outputs["model"].path, "db": db_url}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
