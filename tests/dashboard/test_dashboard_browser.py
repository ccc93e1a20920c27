"""The dashboard in Debian's headless Chromium, driven by Playwright (never a browser it
downloads): pages render, every chart has data, the table holds the stored trials, a running
experiment updates without a reload, no console errors, and stored markup never runs.

`TUNER_DASHBOARD_SCREENSHOTS=DIR` saves the screenshots docs/dashboard.md shows into DIR;
`TUNER_REQUIRE_CHROMIUM=1` (set by .ci/run) fails instead of skipping without Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tuner.store import MetricSummary, Observation, TrialStatus

CHROMIUM = os.environ.get("TUNER_CHROMIUM", "/usr/bin/chromium")
WAIT_MS = 120_000  # a wait, not an assertion: a loaded CI machine only makes it slower

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
        if os.environ.get("TUNER_REQUIRE_CHROMIUM"):  # CI: a skip would hide the tests
            pytest.fail(missing)
        pytest.skip(missing)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


class Tab:
    """A page with its console errors, uncaught exceptions and dialogs recorded."""

    def __init__(self, browser: Any, bypass_csp: bool = False) -> None:
        # The pages' Content-Security-Policy stays on unless a test asks: console errors it
        # causes must show. (It forbids eval, so waits are selectors, never JS predicates.)
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 900}, bypass_csp=bypass_csp
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._on_dialog)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", state="attached")
        return self.page

    def charts_drawn(self) -> dict[str, dict[str, Any]]:
        """Wait until every chart of the page has an answer; each one's state and points."""
        self.page.wait_for_selector(".charts .plot:not([data-state])", state="detached")
        return self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('.charts .plot')].map(
                d => [d.dataset.kind, {state: d.dataset.state, points: Number(d.dataset.points),
                      traces: (d.data || []).length, svg: !!d.querySelector('.main-svg')}]))"""
        )


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    opened = Tab(browser)
    yield opened
    opened.context.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("TUNER_DASHBOARD_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def test_list_experiment_and_trial_pages_render_with_data(make, store, serve, tab, tmp_path):
    store.create_experiment("mnist-mlp", "team-a", make.spec())
    store.set_experiment_status("mnist-mlp", "Running")
    names = make.add_trials(store, "mnist-mlp", 60)
    store.set_experiment_status("mnist-mlp", "Succeeded", "GoalReached", "goal met")
    store.create_experiment("cifar-resnet", "team-b", make.spec(goal="maximize", metric="acc"))
    log = tmp_path / "trial.log"
    log.write_text("".join(f"epoch {i}: loss={make.loss(0) * (3 - i)}\n" for i in range(3)))
    store.update_trial(names[0], executor_kind="local", log_path=str(log))
    served = serve(store)

    page = tab.open(served.url + "/experiments")
    rows = page.locator("#experiments tbody tr")
    assert rows.count() == 2
    assert "GoalReached" in rows.nth(0).inner_text()
    page.select_option("#filter-namespace", "team-b")
    expect(rows).to_have_count(1)
    assert rows.inner_text().startswith("cifar-resnet")
    page.select_option("#filter-namespace", "")
    expect(rows).to_have_count(2)
    screenshot(page, tmp_path, "dashboard-experiments.png")

    page.click("text=mnist-mlp")
    page.wait_for_url("**/experiments/mnist-mlp")
    page.wait_for_selector("body[data-ready='1']", state="attached")
    charts = tab.charts_drawn()
    assert set(charts) == {
        "history",
        "importances",
        "parallel",
        "slice",
        "contour",
        "intermediate",
        "timeline",
    }
    for kind, chart in charts.items():
        assert chart["state"] == "drawn" and chart["svg"], kind
        assert chart["traces"] > 0 and chart["points"] > 0, kind
    assert page.locator("#trial-count").inner_text() == "60 of 60 trials"
    assert page.locator("#trials tbody tr").count() == 50  # one page
    shown = page.eval_on_selector_all("#trials tbody tr", "rs => rs.map(r => r.dataset.name)")
    assert shown == names[:50]
    screenshot(page, tmp_path, "dashboard-experiment.png")

    # Sort by objective (click the header), then filter, then page.
    page.click("#trials thead th:has-text('objective')")
    first = page.locator("#trials tbody tr").first.get_attribute("data-name")
    assert first == min(names, key=lambda n: make.loss(int(n.rsplit("t", 1)[1])))
    page.fill("#trial-filter", "mnist-mlp-t5")
    expect(page.locator("#trials tbody tr")).to_have_count(11)
    page.fill("#trial-filter", "")
    page.click("#page-next")
    assert page.locator("#page-info").inner_text() == "page 2 / 2"
    assert page.locator("#trials tbody tr").count() == 10

    page.click(f"#trials tbody tr[data-name='{names[0]}'] a")
    page.wait_for_url(f"**/trials/{names[0]}")
    page.wait_for_selector("#fig-metric-history[data-state='drawn']", state="attached")
    assert "sgd" in page.locator("#trial-params").inner_text()
    assert page.locator("#trial-metrics tbody tr").count() == 1
    assert "epoch 2: loss=1.0" in page.locator("#trial-log").inner_text()
    screenshot(page, tmp_path, "dashboard-trial.png")
    assert tab.errors == []


def test_running_experiment_shows_new_trials_without_reload(make, store, serve, tab):
    store.create_experiment("live", "default", make.spec())
    store.set_experiment_status("live", "Running")
    make.add_trials(store, "live", 3)
    served = serve(store, poll_interval=0.2)

    page = tab.open(served.url + "/experiments/live")
    tab.charts_drawn()
    page.evaluate("window.__loaded_once = true")
    assert page.locator("#trials tbody tr").count() == 3
    (new,) = make.add_trials(store, "live", 1, start=3)

    page.wait_for_selector(f"#trials tbody tr[data-name='{new}']")
    page.wait_for_selector("body[data-drawn='4']", state="attached")
    assert page.evaluate("document.getElementById('fig-history').data[0].x.length") == 4
    assert page.evaluate("window.__loaded_once") is True  # the same page, not a reload
    assert page.locator("#trial-count").inner_text() == "4 of 4 trials"
    assert tab.errors == []


XSS = '<script>window.__xss = 1</script>"><img src=x onerror="window.__xss = 2">'


# Without the CSP too: escaping alone must keep the markup inert.
@pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp", "no-csp"])
def test_stored_markup_is_shown_as_text_and_never_runs(
    make, store, serve, browser, bypass_csp, tmp_path
):
    tab = Tab(browser, bypass_csp=bypass_csp)
    name = "exp" + XSS
    spec = make.spec(metric="loss" + XSS)
    spec["parameters"][2]["feasibleSpace"]["list"] = ["sgd" + XSS, "adam"]
    spec["algorithm"]["algorithmName"] = XSS
    store.create_experiment(name, "ns" + XSS, spec)
    store.set_experiment_status(name, "Running", "reason" + XSS, "message" + XSS)
    trial = "trial" + XSS
    store.create_trials(name, [(trial, {"lr": "0.5", "layers": "2", "opt": "sgd" + XSS})])
    store.create_trials(name, [("plain", {"lr": "0.1", "layers": "3", "opt": "adam"})])
    metric = "loss" + XSS
    log = tmp_path / "trial.log"
    log.write_text(f"{XSS}\nloss=0.5\n")
    for t, value in ((trial, 0.5), ("plain", 0.7)):
        store.update_trial(t, status=TrialStatus.RUNNING, executor_kind="local", log_path=str(log))
        store.add_observations(t, [Observation(t, metric, value, step=s) for s in range(2)])
        store.finish_trial(
            t,
            TrialStatus.SUCCEEDED,
            value,
            {metric: MetricSummary(value, value, value), "acc" + XSS: MetricSummary(1, 1, 1)},
            message="done" + XSS,
        )
    served = serve(store)

    page = tab.open(served.url + "/experiments")
    assert XSS in page.locator("#experiments tbody").inner_text()
    page.click("#experiments tbody a")
    page.wait_for_selector("body[data-ready='1']", state="attached")
    tab.charts_drawn()
    assert page.locator("#experiment-name").inner_text() == name
    assert XSS in page.locator("#yaml").inner_text()
    assert XSS in page.locator("#trials").inner_text()
    page.click("#trials tbody tr:first-child a")
    page.wait_for_selector("#fig-metric-history[data-state='drawn']", state="attached")
    assert page.locator("#trial-name").inner_text() == trial
    assert XSS in page.locator("#trial-log").inner_text()
    assert XSS in page.locator("#trial-metrics").inner_text()

    for _ in range(2):  # the list page and a reload: still nothing ran
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src='x']").count() == 0
        page.reload()
        page.wait_for_selector("body[data-ready='1']", state="attached")
    assert tab.dialogs == []
    assert tab.errors == []
    tab.context.close()
