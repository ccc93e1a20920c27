"""`tuner dashboard` as a user runs it: a real process that prints its URL, listens on
loopback by default, refuses bad input, and never shows the database password; and the
dashboard reading each backend while a real `tuner run` writes to it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import support
from support.databases import server_url

from tuner.cli import build_parser
from tuner.store import Store

REPO = Path(__file__).resolve().parents[2]
TUNER = [sys.executable, "-m", "tuner.cli"]


class Dashboard:
    """`tuner dashboard` in a subprocess; `url` is what it printed."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [*TUNER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.first_line = self.process.stdout.readline()
        self.url = self.first_line.rsplit(" ", 1)[-1].strip().rstrip("/")

    def stop(self) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, self.first_line + out, err


def test_default_address_is_loopback():
    args = build_parser().parse_args(["dashboard"])
    assert args.address == "127.0.0.1:8080"


def test_serves_on_the_printed_url_and_stops_on_ctrl_c(make, tmp_path):
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    with Store.open(db) as store:
        store.create_experiment("mnist", "default", make.spec())
        make.add_trials(store, "mnist", 2)
    dashboard = Dashboard("dashboard", "--db", db, "--address", "127.0.0.1:0")
    try:
        assert dashboard.url.startswith("http://127.0.0.1:")
        assert dashboard.url.rsplit(":", 1)[1] != "0"
        status, page = support.http_get(dashboard.url + "/experiments/mnist")
        assert status == 200 and "mnist" in page
        listed = json.loads(support.http_get(dashboard.url + "/api/experiments")[1])
        assert [e["name"] for e in listed["experiments"]] == ["mnist"]
    finally:
        code, out, err = dashboard.stop()
    assert code == 130, err  # interrupted, as every tuner command reports Ctrl-C
    assert "Traceback" not in err


def test_a_missing_sqlite_file_is_refused_not_created(tmp_path):
    missing = tmp_path / "nope.db"
    done = subprocess.run(
        [*TUNER, "dashboard", "--db", f"sqlite:///{missing}", "--address", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "does not exist" in done.stderr
    assert not missing.exists()


def test_a_bad_address_is_a_usage_error(tmp_path):
    Store.open(f"sqlite:///{tmp_path / 'tuner.db'}").close()
    done = subprocess.run(
        [*TUNER, "dashboard", "--db", f"sqlite:///{tmp_path / 'tuner.db'}", "--address", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "HOST:PORT" in done.stderr


@pytest.mark.postgres
def test_the_database_password_is_in_no_page_and_no_log(make):
    base = server_url("postgresql")
    secret = "hunter2-do-not-show"
    parsed = urllib.parse.urlsplit(base)
    # The test server trusts local connections, so any password opens it.
    url = urllib.parse.urlunsplit(
        parsed._replace(netloc=f"postgres:{secret}@{parsed.hostname}:{parsed.port}")
    )
    experiment = f"secret-test-{uuid.uuid4().hex[:8]}"
    with Store.open(url) as store:
        store.create_experiment(experiment, "default", make.spec())
        (trial,) = make.add_trials(store, experiment, 1)
    dashboard = Dashboard("-vv", "dashboard", "--db", url, "--address", "127.0.0.1:0")
    bodies = []
    try:
        for path in (
            "/experiments",
            f"/experiments/{experiment}",
            f"/trials/{trial}",
            "/experiments/unknown",
            "/api/experiments",
            f"/api/experiment?name={experiment}",
            f"/api/trials?experiment={experiment}",
            f"/api/trials.csv?experiment={experiment}",
            f"/api/figure?experiment={experiment}&kind=history",
            f"/api/trial?name={trial}",
        ):
            bodies.append(support.http_get(dashboard.url + path)[1])
    finally:
        code, out, err = dashboard.stop()
        with Store.open(url) as store:
            store.delete_experiment(experiment)
    assert experiment in bodies[1] and trial in bodies[2]
    for text in (*bodies, out, err):
        assert secret not in text
        assert base not in text


@pytest.mark.parametrize("poll", [0.2])
def test_reads_every_backend_while_tuner_run_writes(db_url, serve, tmp_path, poll):
    for name in ("quickstart.yaml", "quickstart_train.py"):
        shutil.copy(REPO / "examples" / name, tmp_path)
    with Store.open(db_url) as store:  # the schema exists before both processes start
        served = serve(store, poll_interval=poll)
        run = subprocess.Popen(
            [*TUNER, "run", "quickstart.yaml", "--db", db_url, "--no-progress"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen: set[int] = set()
        query = urllib.parse.urlencode({"experiment": "quickstart"})
        while run.poll() is None:
            for path in ("/api/experiments", f"/api/trials?{query}", f"/api/version?{query}"):
                status, body = support.http_get(served.url + path)
                # 404: the experiment is not stored yet; anything else but 200 is a failure.
                assert status in (200, 404), (path, status, body)
                if status == 200 and path.startswith("/api/trials"):
                    seen.add(len(json.loads(body)["rows"]))
            time.sleep(poll)
        assert run.returncode == 0, run.stderr.read() if run.stderr else ""
        table = json.loads(support.http_get(served.url + f"/api/trials?{query}")[1])
        stored = store.list_trials("quickstart")
        assert [r[0] for r in table["rows"]] == [t.name for t in stored] and len(stored) == 12
        figure = json.loads(support.http_get(served.url + f"/api/figure?{query}&kind=history")[1])
        assert len(figure["figure"]["data"][0]["x"]) >= 1
        trial = json.loads(support.http_get(served.url + f"/api/trial?name={stored[0].name}")[1])
        assert "loss=" in (trial["log"] or "")
    assert seen  # the trial table was read while tuner run was writing
