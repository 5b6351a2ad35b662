"""otelite ui in a real browser (Debian's Chromium through chromedriver): `nox -s ui`.

The store is filled by replaying the recorded OpenAI cassettes through the instrumented
client, with content capture on; a prompt registry and two eval run files complete it.
Every page must load without console errors; a screenshot of each is written to
``$OTELITE_UI_SCREENSHOTS`` (default ``build/ui-screenshots``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("OTELITE_BROWSER_TESTS"):
    pytest.skip(
        "browser tests run in `nox -s ui` (OTELITE_BROWSER_TESTS=1)", allow_module_level=True
    )

webdriver = pytest.importorskip("selenium.webdriver")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

import otelite  # noqa: E402
from cassettes import all_cassettes, call_kwargs, load, make_client, method_for  # noqa: E402
from otelite.evals import EvalRun, Example, RowResult, Score  # noqa: E402
from otelite.prompts import PromptRegistry  # noqa: E402
from otelite.store import LocalStore  # noqa: E402
from otelite.ui import App, UIServer  # noqa: E402

CHROMIUM = os.environ.get("OTELITE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OTELITE_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = Path(os.environ.get("OTELITE_UI_SCREENSHOTS", "build/ui-screenshots")).resolve()


def _fill(home: Path) -> None:
    """Replay every cassette (sync) into a store under ``home``, content captured, in pipelines."""
    otelite.configure(
        local_store=str(home / "store"), capture_content=True, service_name="cassettes"
    )
    otelite.instrument_openai()
    try:
        for name in all_cassettes():
            interactions = load(name)
            client, _ = make_client(interactions)
            with otelite.span(f"pipeline {Path(name).stem}"):
                for interaction in interactions:
                    method = method_for(client, interaction)
                    try:
                        result = method(**call_kwargs(method, interaction))
                        if interaction.is_stream:
                            list(result)
                    except openai.OpenAIError:
                        pass  # recorded errors: error spans, shown highlighted
        otelite.force_flush()
    finally:
        otelite.uninstrument_openai()
        otelite.shutdown()
    registry = PromptRegistry(home / "prompts")
    registry.push(
        "support", template="You are a support agent.\nAnswer: {{question}}", labels=["production"]
    )
    registry.push("support", template="You are a concise support agent.\nAnswer: {{question}}")
    runs = home / "runs"
    runs.mkdir()
    for run_name, verdicts in (
        ("baseline", [True, True, False]),
        ("candidate", [True, False, True]),
    ):
        rows = [
            RowResult(
                index=i,
                repeat=0,
                example=Example(f"question {i}", "yes"),
                output="yes" if ok else "no",
                scores={"exact_match": Score("exact_match", float(ok), passed=ok)},
            )
            for i, ok in enumerate(verdicts)
        ]
        EvalRun(run_name, run_name, rows, ["exact_match"]).to_jsonl(runs / f"{run_name}.jsonl")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("ui")
    _fill(home)
    app = App(home / "store", prompts_dir=home / "prompts", runs_dir=home / "runs")
    server = UIServer(app, "127.0.0.1", 0)
    thread = server.start()
    try:
        yield server.url.rsplit("/traces", 1)[0], home
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = Options()
    options.binary_location = CHROMIUM  # Debian's Chromium: Selenium Manager downloads nothing
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def visit(browser: Any, url: str, shot: str) -> None:
    """Load ``url``, save a full-width screenshot, and fail on any console error."""
    browser.get(url)
    assert browser.find_element(By.TAG_NAME, "h1").text
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{shot}.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def _submit(browser: Any, button: Any) -> None:
    """Click a form's button and wait for the page it loads: the old page must be gone
    before anything is read (a click returns before the navigation completes)."""
    page = browser.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(page))


def test_every_page_loads_without_console_errors(site: tuple[str, Path], browser: Any) -> None:
    """Traces, a trace, stats, prompts, a prompt, evaluations, a run and a comparison all load cleanly."""
    base, home = site
    with LocalStore(home / "store") as store:
        trace_id = max(store.traces(limit=200), key=lambda t: (t.llm_calls, t.span_count)).trace_id
    pages = [
        ("traces", "/traces"),
        ("trace", f"/trace/{trace_id}"),
        ("stats", "/stats?since=all"),
        ("prompts", "/prompts"),
        ("prompt", "/prompts/support"),
        ("evals", "/evals"),
        ("eval-run", "/evals/run?file=candidate.jsonl"),
        ("eval-compare", "/evals/compare?a=baseline.jsonl&b=candidate.jsonl"),
    ]
    for shot, path in pages:
        visit(browser, base + path, shot)
        assert browser.title.endswith("· otelite")
    assert "Regressed rows (1)" in browser.page_source


def test_the_waterfall_has_one_bar_per_span(site: tuple[str, Path], browser: Any) -> None:
    """A trace's waterfall draws exactly one bar per stored span, errors in red."""
    base, home = site
    with LocalStore(home / "store") as store:
        traces = store.traces(limit=200)
        for summary in traces[:5]:
            spans = store.spans(summary.trace_id)
            browser.get(f"{base}/trace/{summary.trace_id}")
            bars = browser.find_elements(By.CSS_SELECTOR, ".track .bar")
            assert len(bars) == len(spans)
            failed = browser.find_elements(By.CSS_SELECTOR, ".bar.error")
            assert len(failed) == sum(1 for s in spans if s.status_code == "ERROR")
            assert all(
                b.value_of_css_property("background-color") == "rgba(220, 38, 38, 1)"
                for b in failed
            )
        assert any(t.status_code == "ERROR" for t in traces)


def test_a_filter_narrows_the_trace_list(site: tuple[str, Path], browser: Any) -> None:
    """Typing a model into the filter form and submitting keeps only the traces that called it."""
    base, home = site
    browser.get(base + "/traces?limit=500")
    before = len(browser.find_elements(By.CSS_SELECTOR, "a.trace-link"))
    with LocalStore(home / "store") as store:
        expected = store.traces(limit=500, model="gpt-4o-mini")
    assert 0 < len(expected) < before
    browser.find_element(By.NAME, "model").send_keys("gpt-4o-mini")
    _submit(browser, browser.find_element(By.CSS_SELECTOR, "form.filters button"))
    links = browser.find_elements(By.CSS_SELECTOR, "a.trace-link")
    assert "model=gpt-4o-mini" in browser.current_url
    assert len(links) == min(len(expected), 50)
    assert {a.get_attribute("href").rsplit("/", 1)[1] for a in links} <= {
        t.trace_id for t in expected
    }


def test_the_prompt_diff_shows_the_changed_line(site: tuple[str, Path], browser: Any) -> None:
    """Choosing two versions and pressing diff shows the removed and the added line."""
    base, _ = site
    browser.get(base + "/prompts/support?a=2&b=2")
    assert browser.find_elements(By.CSS_SELECTOR, "pre.diff .add") == []
    Select(browser.find_element(By.NAME, "a")).select_by_visible_text("v1")
    Select(browser.find_element(By.NAME, "b")).select_by_visible_text("v2")
    _submit(browser, browser.find_elements(By.CSS_SELECTOR, "form.filters button")[1])
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.diff .del")] == [
        "-You are a support agent."
    ]
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.diff .add")] == [
        "+You are a concise support agent."
    ]
    visit(browser, browser.current_url, "prompt-diff")
