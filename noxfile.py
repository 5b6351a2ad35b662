"""Development sessions: `nox -l` lists them; `nox` runs the default set (what CI runs)."""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
TIKTOKEN_CACHE = ROOT.parent / "shared" / "tiktoken-cache"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "tests-oldest", "openai", "smoke", "docs"]
nox.options.error_on_missing_interpreters = True

# pyenv keeps each interpreter in its own folder; put them all on PATH so that
# every session finds python3.9 ... python3.13 without `pyenv global`.
_pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
for _bin in sorted(glob.glob(os.path.join(_pyenv_root, "versions", "3.*", "bin")), reverse=True):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

_missing = [v for v in PYTHONS if shutil.which(f"python{v}") is None]
if _missing:
    # nox's own message for this is one line lost in a long log: say what to do first.
    print(
        f"nox: Python {', '.join(_missing)} not found on PATH. The full run (`nox`) needs every "
        "Python 3.9-3.13 (pyenv install ...) and fails without them; with one interpreter, run "
        f"a single-Python path instead, e.g. `nox -s lint typecheck tests-{sys.version_info[0]}."
        f"{sys.version_info[1]} smoke docs`.",
        file=sys.stderr,
    )
if TIKTOKEN_CACHE.is_dir():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(TIKTOKEN_CACHE.resolve()))


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting check over src, tests, examples, docs helpers."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "examples", "noxfile.py")


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package (targeting Python 3.10, the oldest version mypy still checks for)."""
    session.install("mypy>=1.10", "types-PyYAML", "-e", ".[dev,openai]")
    session.run("mypy")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on every supported Python (with the newest dependencies)."""
    session.install("-e", ".[dev,openai]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.12", name="tests-asyncio-plugin")
def tests_asyncio_plugin(session: nox.Session) -> None:
    """The test suite with pytest-asyncio installed, as in many contributors' environments."""
    session.install("-e", ".[dev,openai]", "pytest-asyncio")
    session.run("pytest", *session.posargs)


# The oldest supported openai, and the newest of each major (3.x is built on httpx2).
OPENAI_VERSIONS = ["1.66.0", "1.109.1", "2.54.0", "3.57.0"]


@nox.session(python="3.12")
@nox.parametrize("openai_version", OPENAI_VERSIONS)
def openai(session: nox.Session, openai_version: str) -> None:
    """The OpenAI instrumentation, online checks and judge tests against one openai version."""
    session.install("-e", ".[dev]", f"openai=={openai_version}")
    session.run(
        "pytest",
        "tests/test_openai.py",
        "tests/test_openai_streams.py",
        "tests/test_openai_cassettes.py",
        "tests/test_lean.py",
        "tests/test_hot_path.py",
        "tests/test_checks.py",
        "tests/test_evals_judge.py",
        "tests/test_evals_run.py",
        "tests/test_api_changes.py",
        *session.posargs,
    )


@nox.session(python="3.12")
def chaos(session: nox.Session) -> None:
    """The chaos suite alone: every promise under its fault (also part of `tests`)."""
    session.install("-e", ".[dev,openai]")
    session.run("pytest", "tests/chaos", *session.posargs)


@nox.session(python="3.9", name="tests-oldest")
def tests_oldest(session: nox.Session) -> None:
    """The test suite against the oldest versions of the dependencies otelite declares."""
    if session.venv_backend != "uv":
        session.skip("needs the uv backend to resolve the lowest versions")
    session.install("--resolution=lowest-direct", "-e", ".[dev,openai]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.12")
def smoke(session: nox.Session) -> None:
    """Build the wheel, install it without extras in a fresh venv, and import it lightly."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", str(dist), external=False)
    wheel = next(dist.glob("otelite-*.whl"))
    session.install(str(wheel))
    session.run(
        "python",
        "-c",
        "import sys, otelite, otelite.store, otelite.testing, otelite.evals, otelite.ui\n"
        "from otelite.integrations import grafana\n"
        "assert len(grafana.artefacts()) >= 12, grafana.artefacts()  # shipped in the wheel\n"
        "banned = ('openai', 'tiktoken', 'grpc')\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in banned]\n"
        "assert not loaded, f'import otelite loaded {loaded}'\n"
        "run = otelite.evals.evaluate([{'input': 'a', 'expected': 'a'}], str, [otelite.evals.exact_match()], progress=False)\n"
        "assert run.summary.evaluators['exact_match'].pass_rate == 1.0, run.report()\n"
        "assert otelite.ui.App('/nonexistent').handle('/traces').status == 503  # otelite ui ships\n"
        "print('otelite', otelite.__version__, 'imports cleanly from', otelite.__file__)\n",
    )
    session.run(
        "python",
        "-c",
        "import importlib.util, sys; sys.exit(importlib.util.find_spec('openai') is not None)",
    )


@nox.session(python="3.12")
def docs(session: nox.Session) -> None:
    """Run every ```python example in docs/ and README.md (blocks marked `norun` are skipped)."""
    session.install("-e", ".[openai]")
    session.run("python", "docs/run_examples.py", "README.md", *sorted(glob.glob("docs/*.md")))


@nox.session(python="3.12")
def phoenix(session: nox.Session) -> None:
    """Export the quickstart to a real Arize Phoenix server on 127.0.0.1 and check its REST API."""
    session.install("-e", ".[openai]", "arize-phoenix")
    session.run("python", "tests/phoenix_check.py", *session.posargs)


@nox.session(python="3.12")
def prometheus(session: nox.Session) -> None:
    """Dashboards and alert rules against a real Prometheus on 127.0.0.1 (Debian's package; see .ci/run)."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        session.error("needs Prometheus 2.x and promtool on PATH: apt-get install -y prometheus")
    session.install("-e", ".[openai,prometheus]", "pyyaml")
    session.run("python", "tests/prometheus/check.py", *session.posargs)


@nox.session(python="3.12", name="bench-store")
def bench_store(session: nox.Session) -> None:
    """The local store at scale: 1M spans ingested, then the CLI's queries (docs/performance.md)."""
    session.install("-e", ".")
    session.run("python", "benchmarks/store_scale.py", *session.posargs)


BROWSER = ("/usr/bin/chromium", "/usr/bin/chromedriver")


@nox.session(python="3.12")
def ui(session: nox.Session) -> None:
    """`otelite ui` in a real browser: Debian's Chromium + chromedriver (installed with apt-get when
    missing and running as root), Selenium pointed at them; screenshots in build/ui-screenshots."""
    if not all(os.path.exists(p) for p in BROWSER):
        if os.geteuid() != 0:
            session.error(
                "install Debian's browser first: sudo apt-get install chromium chromium-driver"
            )
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", "chromium-driver", external=True)
    session.install("-e", ".[dev,openai]", "selenium>=4.11")
    session.env["OTELITE_BROWSER_TESTS"] = "1"
    session.env.setdefault("OTELITE_UI_SCREENSHOTS", str(ROOT / "build" / "ui-screenshots"))
    session.run("pytest", "tests/browser", *session.posargs)


@nox.session(python="3.12", name="bench-ui")
def bench_ui(session: nox.Session) -> None:
    """`otelite ui` page times on the 1M-span store of bench-store (docs/performance.md)."""
    session.install("-e", ".")
    session.run("python", "benchmarks/ui_pages.py", *session.posargs)


@nox.session(python="3.12")
def durability(session: nox.Session) -> None:
    """What is kept under bursts, SIGTERM, workers, outages, torn prompt files (the table in docs/reliability.md)."""
    session.install("-e", ".[dev,openai]")
    session.run("python", "benchmarks/durability.py", *session.posargs)


@nox.session(python="3.12")
def prices(session: nox.Session) -> None:
    """Regenerate src/otelite/prices.json from the genai-prices catalog (pin its version in pyproject)."""
    session.install("genai-prices==0.2.3")
    session.run("python", "scripts/update_prices.py")


@nox.session(python="3.12", name="bench-changes")
def bench_changes(session: nox.Session) -> None:
    """What API-change detection adds per call, on vs off in one process (budget 5 µs)."""
    session.install("-e", ".[openai]")
    session.run("python", "benchmarks/api_changes.py", *session.posargs)


@nox.session(python="3.12", name="bench-bound")
def bench_bound(session: nox.Session) -> None:
    """How low chat and stream overhead can go: hand-specialised wrappers against the floor and otelite."""
    session.install("-e", ".[openai]")
    session.run("python", "benchmarks/lower_bound.py", *session.posargs)


@nox.session(python="3.12")
def bench(session: nox.Session) -> None:
    """Benchmarks (overhead per call, import time, memory); writes docs/performance.md.

    Installs the official OpenAI instrumentation next to otelite, for the side-by-side
    figures only (newest release that imports with its declared dependencies here).
    """
    session.install(
        "-e",
        ".[openai]",
        "opentelemetry-instrumentation-openai-v2==2.4b0",
        "opentelemetry-util-genai==1.1b0",
    )
    session.run("python", "benchmarks/run.py", *session.posargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run this file with nox")
