"""The three exports of a trial table name the same columns with the same values:
`tuner get trials -o csv`, `Result.to_dataframe()` and the dashboard's download button."""

from __future__ import annotations

import csv
import io
import urllib.parse

import pytest

import tuner
from tuner.cli import main


def test_cli_csv_dataframe_and_download_agree(make, store, serve, capsys, tmp_path):
    pandas = pytest.importorskip("pandas")
    store.create_experiment("mnist", "default", make.spec())
    names = make.add_trials(store, "mnist", 5)
    db = str(store.url)

    assert main(["get", "trials", "mnist", "--db", db, "-o", "csv"]) == 0
    cli = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    frame = tuner.load("mnist", db=db).to_dataframe()
    query = urllib.parse.urlencode({"experiment": "mnist"})
    download = list(csv.reader(io.StringIO(serve(store).get(f"/api/trials.csv?{query}")[1])))

    assert cli == download
    assert cli[0] == list(frame.columns)
    assert list(frame["name"]) == names == [r[0] for r in cli[1:]]
    assert cli[0] == [
        "name",
        "status",
        "objective",
        "params.lr",
        "params.layers",
        "params.opt",
        "metrics.loss",
        "started_at",
        "completed_at",
        "duration_seconds",
        "exit_code",
        "message",
    ]
    assert frame["params.layers"].tolist() == [1, 2, 3, 4, 5]
    assert frame["objective"].tolist() == pytest.approx([make.loss(i) for i in range(5)])
    assert frame["duration_seconds"].tolist() == [8.0] * 5
    assert isinstance(frame, pandas.DataFrame)
    for row, (_, expected) in zip(cli[1:], frame.iterrows(), strict=True):
        assert float(row[2]) == pytest.approx(expected["objective"])
        assert row[7] == expected["started_at"] and row[7].endswith("Z")


def test_cli_csv_keeps_status_filter_and_sort(make, store, capsys):
    store.create_experiment("mnist", "default", make.spec())
    make.add_trials(store, "mnist", 4)
    store.create_trials("mnist", [("waiting", {"lr": "0.5", "layers": "2", "opt": "sgd"})])
    db = str(store.url)
    args = ["get", "trials", "mnist", "--db", db, "-o", "csv", "--sort-by", "objective"]
    assert main([*args, "--status", "Succeeded"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    values = [float(r[2]) for r in rows[1:]]
    assert values == sorted(values) and len(values) == 4
