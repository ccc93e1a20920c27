"""Kubeflow Pipelines v2 components that run tuning: a lightweight one and a container one.

No `from __future__ import annotations` here: kfp builds a component's interface from its
annotations and needs them as objects, not strings.
"""

from kfp import dsl
from kfp.dsl import Artifact, Output, OutputPath
from kfp.dsl.base_component import BaseComponent

from tuner.executors import DEFAULT_EXECUTOR
from tuner.pipeline import _functions

# A placeholder: no image is published yet. Build one with `pip install 'tuner[pipeline]'`
# (kfp is needed by the lightweight component) and pass its name to the factories below.
DEFAULT_IMAGE = "ghcr.io/tuner-dev/tuner:0.1.0"


def tune_component(base_image: str = DEFAULT_IMAGE) -> BaseComponent:
    """The lightweight `tune` component, running in `base_image`.

    The image must hold tuner and kfp: nothing is pip-installed when the step starts (with
    kfp.local's `SubprocessRunner(use_venv=False)` the step runs in the current environment).
    """
    return dsl.component(base_image=base_image, packages_to_install=[], install_kfp_package=False)(
        _functions.tune
    )


def tune_container_component(image: str = DEFAULT_IMAGE) -> BaseComponent:
    """The container variant of `tune`: `python -m tuner.pipeline` in `image`.

    Same inputs and outputs as `tune_component`; the image needs tuner only (no kfp). kfp.local's
    SubprocessRunner cannot run container components: run it on a cluster or with DockerRunner.
    """

    @dsl.container_component
    def tune_op_container(
        experiment: str,
        result: Output[Artifact],
        best_parameters: OutputPath(dict),  # type: ignore[valid-type]
        best_parameters_json: OutputPath(str),  # type: ignore[valid-type]
        best_objective: OutputPath(float),  # type: ignore[valid-type]
        experiment_name: OutputPath(str),  # type: ignore[valid-type]
        db_url: str = "",
        executor: str = DEFAULT_EXECUTOR,
        timeout_seconds: int = 0,
    ) -> dsl.ContainerSpec:
        """Run a Katib v1beta1 Experiment with `tuner run --output` and hand on its best trial."""
        return dsl.ContainerSpec(
            image=image,
            command=["python", "-m", "tuner.pipeline"],
            args=[
                "--experiment-text", experiment,
                "--db", db_url,
                "--executor", executor,
                "--timeout-seconds", timeout_seconds,
                "--result", result.path,
                "--best-parameters", best_parameters,
                "--best-parameters-json", best_parameters_json,
                "--best-objective", best_objective,
                "--experiment-name", experiment_name,
            ],
        )  # fmt: skip

    return tune_op_container


tune = tune_component()
tune_op_container = tune_container_component()
