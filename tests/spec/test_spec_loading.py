"""Loading YAML text and files: several documents, syntax errors, round trip through to_dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tuner.spec import Experiment, SpecError, load_file, loads

VALID = sorted((Path(__file__).parent / "valid").glob("*.yaml"))


def _dump(*docs: object) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def test_several_documents_load_in_order_and_empty_ones_are_skipped(kit) -> None:
    first, second = kit.doc(), kit.doc()
    second["metadata"]["name"] = "second"
    text = "---\n" + _dump(first) + "---\n---\n" + _dump(second)
    assert [e.metadata.name for e in loads(text)] == ["exp", "second"]


def test_issues_of_every_document_are_reported_with_the_document_index(kit) -> None:
    good, bad_max, bad_name = kit.doc(), kit.doc(maxTrialCount=-1), kit.doc()
    bad_name["metadata"]["name"] = "Nope"
    with pytest.raises(SpecError) as caught:
        loads(_dump(good, bad_max, bad_name), source="three.yaml")
    assert [i.path for i in caught.value.issues] == ["[1].spec.maxTrialCount", "[2].metadata.name"]
    assert str(caught.value).startswith("three.yaml: invalid Experiment (2 problems):")


def test_a_single_document_has_no_index_prefix(kit) -> None:
    with pytest.raises(SpecError) as caught:
        loads(_dump(kit.doc(maxTrialCount=-1)))
    assert [i.path for i in caught.value.issues] == ["spec.maxTrialCount"]


def test_yaml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(SpecError) as caught:
        loads("apiVersion: kubeflow.org/v1beta1\nmetadata:\n  name: [a\n", source="bad.yaml")
    [issue] = caught.value.issues
    assert issue.path.startswith("line 4, column 1")
    assert issue.message.startswith("YAML syntax error:")
    assert str(caught.value).startswith("bad.yaml: ")


def test_a_document_that_is_not_a_mapping_is_refused(kit) -> None:
    with pytest.raises(SpecError) as caught:
        loads(_dump(kit.doc(), ["not", "an", "experiment"]))
    [issue] = caught.value.issues
    assert issue.path == "[1]"
    assert "is not a mapping" in issue.message


def test_empty_text_holds_no_experiment() -> None:
    with pytest.raises(SpecError, match="no Experiment found"):
        loads("---\n# only a comment\n")


@pytest.mark.parametrize("missing", ["apiVersion", "kind"])
def test_api_version_and_kind_are_required_in_yaml(kit, missing: str) -> None:
    doc = kit.doc()
    del doc[missing]
    assert kit.paths(doc) == [missing]


def test_load_file_reports_unreadable_files_as_spec_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as caught:
        load_file(missing)
    assert caught.value.source == str(missing)
    assert "cannot read the file" in str(caught.value)


def test_load_file_names_the_file_in_errors(tmp_path: Path, kit) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(_dump(kit.doc(parallelTrialCount=0)))
    with pytest.raises(SpecError) as caught:
        load_file(path)
    assert str(caught.value) == (
        f"{path}: invalid Experiment: spec.parallelTrialCount: 0 is less than 1"
    )


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_specs_load(path: Path) -> None:
    assert all(isinstance(e, Experiment) for e in load_file(path))


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_to_dict_round_trips_through_yaml(path: Path) -> None:
    for experiment in load_file(path):
        assert loads(yaml.safe_dump(experiment.to_dict())) == [experiment]


def test_to_dict_is_katib_camel_case_with_defaults_applied(kit) -> None:
    data = kit.load(kit.doc()).to_dict()
    assert data["spec"]["parallelTrialCount"] == 3
    assert data["spec"]["resumePolicy"] == "Never"
    assert data["spec"]["metricsCollectorSpec"] == {"collector": {"kind": "StdOut"}}
    assert data["spec"]["objective"]["metricStrategies"] == [{"name": "loss", "value": "min"}]
    assert data["metadata"] == {"name": "exp", "namespace": "default"}
    assert "maxTrialCount" not in data["spec"]  # unset stays unset, as Katib's omitempty


def test_to_dict_keeps_empty_values_inside_trial_spec(kit) -> None:
    doc = kit.doc()
    pod = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    data = kit.load(doc).to_dict()
    trial_pod = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert trial_pod["volumes"] == [{"name": "scratch", "emptyDir": {}}]


def test_search_space_lists_the_parameters_in_spec_order() -> None:
    [experiment] = load_file(Path(__file__).parent / "valid" / "random-job.yaml")
    space = experiment.search_space()
    assert space.names == ["lr", "num-layers", "optimizer"]
    assert space["optimizer"].values == ("sgd", "adam", "ftrl")


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("?", "None"),  # YAML's explicit key with no value: {None: None}
        ("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nspec: {1: 2}", 'spec["1"]'),
        (
            "apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata: {name: a, true: x}",
            "metadata.True",
        ),
    ],
)
def test_a_key_that_is_not_a_string_is_refused_naming_it(text: str, path: str) -> None:
    with pytest.raises(SpecError) as caught:
        loads(text)
    keys = [issue for issue in caught.value.issues if "is not a string" in issue.message]
    assert [issue.path for issue in keys] == [path]
