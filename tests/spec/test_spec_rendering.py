"""render_trial: placeholders replaced once, metadata references, labels, argv never a shell."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tuner.spec import Experiment, SpecError, render_trial

HOSTILE = ["$(rm -rf /)", "; reboot", "${trialParameters.learningRate}", "a b 'c'"]


def _experiment(
    kit, command: list[str], extra: Sequence[dict[str, str]] = (), **container: object
) -> Experiment:
    """``lr`` (double), ``layers`` (int) and ``word`` (categorical, hostile values); ``extra``
    trialParameters and ``container`` fields are added to the template."""
    parameters = [
        {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "1"}},
        {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "8"}},
        {"name": "word", "parameterType": "categorical", "feasibleSpace": {"list": HOSTILE}},
    ]
    trial_parameters = [
        {"name": "learningRate", "reference": "lr"},
        {"name": "numLayers", "reference": "layers"},
        {"name": "word", "reference": "word"},
        *extra,
    ]
    trial_spec = kit.job(command, **container)
    trial_spec["metadata"] = {"labels": {"team": "vision"}, "annotations": {"note": "n1"}}
    spec_template = {
        "primaryContainerName": "trainer",
        "trialParameters": trial_parameters,
        "trialSpec": trial_spec,
    }
    doc = kit.doc(parameters=parameters, trialTemplate=spec_template)
    doc["metadata"]["namespace"] = "team-a"
    return kit.load(doc)


COMMAND = [
    "python3",
    "train.py",
    "--lr=${trialParameters.learningRate}",
    "--layers",
    "${trialParameters.numLayers}",
    "--word=${trialParameters.word}",
]


def test_command_and_args_become_argv_with_formatted_values(kit) -> None:
    experiment = _experiment(kit, COMMAND, args=["--seed", "${trialParameters.numLayers}"])
    trial = render_trial(experiment, "exp-t1", {"lr": 0.1, "layers": 3, "word": "; reboot"})
    assert trial.argv == [
        "python3",
        "train.py",
        "--lr=0.1",
        "--layers",
        "3",
        "--word=; reboot",
        "--seed",
        "3",
    ]


@pytest.mark.parametrize("word", HOSTILE)
def test_hostile_values_stay_literal_and_are_not_substituted_again(kit, word: str) -> None:
    experiment = _experiment(kit, COMMAND)
    trial = render_trial(experiment, "exp-t1", {"lr": 0.5, "layers": 1, "word": word})
    assert trial.argv[-1] == f"--word={word}"


def test_manifest_gets_trial_name_namespace_and_katib_labels(kit) -> None:
    experiment = _experiment(kit, COMMAND)
    trial = render_trial(experiment, "exp-t7", {"lr": 0.5, "layers": 2, "word": "a b 'c'"})
    metadata = trial.manifest["metadata"]
    assert metadata["name"] == "exp-t7"
    assert metadata["namespace"] == "team-a"
    assert metadata["labels"] == {
        "team": "vision",
        "katib.kubeflow.org/experiment": "exp",
        "katib.kubeflow.org/trial": "exp-t7",
    }
    assert trial.manifest["kind"] == "Job"
    containers = trial.manifest["spec"]["template"]["spec"]["containers"]
    assert trial.primary_container is containers[0]


def test_rendering_leaves_the_experiment_template_untouched(kit) -> None:
    experiment = _experiment(kit, COMMAND)
    before = experiment.to_dict()
    render_trial(experiment, "exp-t1", {"lr": 0.5, "layers": 2, "word": "; reboot"})
    assert experiment.to_dict() == before


def test_metadata_references_take_katibs_values(kit) -> None:
    references = {
        "trialName": "${trialSpec.Name}",
        "ns": "${trialSpec.Namespace}",
        "kind": "${trialSpec.Kind}",
        "api": "${trialSpec.APIVersion}",
        "team": "${trialSpec.Labels[team]}",
        "note": "${trialSpec.Annotations[note]}",
    }
    extra = [{"name": name, "reference": ref} for name, ref in references.items()]
    args = [f"${{trialParameters.{name}}}" for name in references]
    experiment = _experiment(kit, COMMAND, args=args, extra=extra)
    trial = render_trial(experiment, "exp-t2", {"lr": 0.5, "layers": 2, "word": "; reboot"})
    assert trial.argv[len(COMMAND) :] == ["exp-t2", "team-a", "Job", "batch/v1", "vision", "n1"]


def test_env_and_working_dir_are_rendered(kit) -> None:
    env = [
        {"name": "LR", "value": "${trialParameters.learningRate}"},
        {"name": "EMPTY"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]
    experiment = _experiment(kit, COMMAND, env=env, workingDir="/work/${trialParameters.numLayers}")
    trial = render_trial(experiment, "exp-t3", {"lr": 0.25, "layers": 4, "word": "; reboot"})
    assert trial.env == {"LR": "0.25", "EMPTY": ""}
    assert trial.env_value_from == ("TOKEN",)
    assert trial.working_dir == "/work/4"


def test_int_values_have_no_decimal_point(kit) -> None:
    experiment = _experiment(kit, COMMAND)
    trial = render_trial(experiment, "exp-t4", {"lr": 1.0, "layers": 5, "word": "; reboot"})
    assert trial.argv[2:5] == ["--lr=1.0", "--layers", "5"]


def test_assignment_must_name_exactly_the_parameters(kit) -> None:
    experiment = _experiment(kit, COMMAND)
    with pytest.raises(SpecError) as caught:
        render_trial(experiment, "exp-t5", {"lr": 0.5, "word": "; reboot", "momentum": 0.9})
    assert sorted(i.path for i in caught.value.issues) == [
        "assignment.layers",
        "assignment.momentum",
    ]
    assert "cannot render trial 'exp-t5'" in str(caught.value)


def test_value_outside_a_categorical_list_is_refused(kit) -> None:
    experiment = _experiment(kit, COMMAND)
    with pytest.raises(SpecError) as caught:
        render_trial(experiment, "exp-t6", {"lr": 0.5, "layers": 1, "word": "unknown"})
    [issue] = caught.value.issues
    assert issue.path == "assignment.word"
    assert "'unknown'" in issue.message
