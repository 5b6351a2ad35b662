"""The README's fresh-clone commands are the ones CI runs, and what they name exists."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10
    tomllib = None

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
NOXFILE = ROOT / "noxfile.py"
SECTION = "## From a fresh clone"


def fresh_clone_section() -> str:
    """The README's "From a fresh clone" section, up to the next heading of the same level."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    body = text.split(SECTION, 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.MULTILINE)[0]


def fenced_commands() -> list[str]:
    """The bash blocks of that section, each one command line."""
    blocks = re.findall(r"^```bash\n(.*?)^```", fresh_clone_section(), re.MULTILINE | re.DOTALL)
    commands = [block.strip() for block in blocks]
    assert all("\n" not in command for command in commands), commands
    return commands


def steps(command: str) -> list[list[str]]:
    """A `a && b && c` command line as its argument lists."""
    return [shlex.split(part) for part in command.split("&&")]


def ci_lines() -> list[str]:
    """The commands .ci/run executes (comments and blank lines left out)."""
    lines = (line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pyproject() -> dict[str, Any]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if tomllib is not None:
        return dict(tomllib.loads(text))
    # Python < 3.11 has no tomllib: read the two tables the test needs.
    extras = re.search(r"^\[project\.optional-dependencies\]\n(.*?)^\[", text, re.M | re.S)
    assert extras is not None
    names = re.findall(r"^([A-Za-z0-9_-]+)\s*=", extras.group(1), re.M)
    requires = re.search(r'^requires-python\s*=\s*"([^"]+)"', text, re.M)
    assert requires is not None
    return {
        "project": {
            "optional-dependencies": {name: [] for name in names},
            "requires-python": requires.group(1),
        }
    }


class Noxfile:
    """What noxfile.py declares, read without importing nox (the test sessions lack it)."""

    def __init__(self) -> None:
        tree = ast.parse(NOXFILE.read_text(encoding="utf-8"))
        self.constants: dict[str, Any] = {}
        self.sessions: dict[str, list[str]] = {}  # name -> pythons
        self.default: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    with contextlib.suppress(ValueError):
                        self.constants[target.id] = ast.literal_eval(node.value)
                elif ast.unparse(target) == "nox.options.sessions":
                    self.default = ast.literal_eval(node.value)
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == (
                        "nox.session"
                    ):
                        self._session(node.name, decorator)

    def _session(self, function: str, decorator: ast.Call) -> None:
        keywords = {k.arg: k.value for k in decorator.keywords}
        name = ast.literal_eval(keywords["name"]) if "name" in keywords else function
        python = keywords.get("python")
        if isinstance(python, ast.Name):
            pythons = list(self.constants[python.id])
        elif python is not None:
            value = ast.literal_eval(python)
            pythons = [value] if isinstance(value, str) else list(value)
        else:
            pythons = []
        self.sessions[name] = pythons

    def runnable(self, selector: str) -> bool:
        """Whether `nox -s selector` names a session (`tests` or `tests-3.11`)."""
        if selector in self.sessions:
            return True
        name, _, python = selector.rpartition("-")
        return python in self.sessions.get(name, ())


def test_readme_has_exactly_the_two_fresh_clone_commands() -> None:
    """The fresh-clone section holds two bash commands: the main job, then the tests."""
    main_job, tests = fenced_commands()
    assert main_job.endswith("examples/quickstart.py")
    assert tests.endswith(".venv/bin/nox")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """.ci/run runs the README's test command, character for character."""
    _, tests = fenced_commands()
    assert tests in ci_lines()


def test_main_job_command_names_what_exists() -> None:
    """The main-job command's extra, script and interpreter are real, and the tests run that script."""
    main_job, _ = fenced_commands()
    venv, install, run = steps(main_job)
    assert venv == ["python3", "-m", "venv", ".venv"]
    assert install[:3] == [".venv/bin/pip", "install", "-e"]
    match = re.fullmatch(r"\.\[([a-z0-9,_-]+)\]", install[3])
    assert match, install
    extras = pyproject()["project"]["optional-dependencies"]
    assert set(match.group(1).split(",")) <= set(extras), (match.group(1), sorted(extras))
    assert run[0] == ".venv/bin/python"
    assert (ROOT / run[1]).is_file(), run
    # The suite runs that very script as a user would (tests/test_quickstart.py).
    quickstart_test = (ROOT / "tests" / "test_quickstart.py").read_text(encoding="utf-8")
    assert '"examples" / "quickstart.py"' in quickstart_test


def test_test_command_runs_the_default_sessions_the_readme_lists() -> None:
    """`nox` with no argument runs every session the README promises, on every Python it names."""
    _, tests = fenced_commands()
    venv, install, run = steps(tests)
    assert venv == ["python3", "-m", "venv", ".venv"]
    assert install == [".venv/bin/pip", "install", "nox[uv]"]
    assert run == [".venv/bin/nox"]
    nox = Noxfile()
    assert nox.default == ["lint", "typecheck", "tests", "tests-oldest", "openai", "smoke", "docs"]
    assert all(nox.runnable(session) for session in nox.default)
    section = fresh_clone_section()
    assert "every Python 3.9–3.13" in section
    assert nox.sessions["tests"] == ["3.9", "3.10", "3.11", "3.12", "3.13"]
    assert "Python 3.9+" in section
    assert pyproject()["project"]["requires-python"] == ">=3.9"
    assert nox.sessions["tests-oldest"] == ["3.9"]
    # "the OpenAI tests on openai 1.x, 2.x and 3.x"
    majors = {version.split(".")[0] for version in nox.constants["OPENAI_VERSIONS"]}
    assert "openai 1.x, 2.x and 3.x" in section
    assert majors == {"1", "2", "3"}


def test_single_python_path_names_real_sessions() -> None:
    """The documented single-Python path (and the noxfile's hint) name sessions that exist."""
    section = fresh_clone_section()
    match = re.search(r"`\.venv/bin/nox -s ([^`]+)`", section)
    assert match, "README documents no single-Python `nox -s ...` path"
    selectors = match.group(1).split()
    assert selectors == ["lint", "typecheck", "tests-3.11", "smoke", "docs"]
    nox = Noxfile()
    assert all(nox.runnable(selector) for selector in selectors), selectors
    # The noxfile prints the same path when an interpreter is missing.
    source = NOXFILE.read_text(encoding="utf-8")
    assert "nox -s lint typecheck tests-{sys.version_info[0]}." in source
    assert "{sys.version_info[1]} smoke docs" in source
    # And the sessions the README says `nox -l` lists.
    assert "phoenix" in nox.sessions
    assert "bench" in nox.sessions


@pytest.mark.skipif(importlib.util.find_spec("nox") is None, reason="nox is not installed here")
def test_nox_lists_the_readme_sessions() -> None:
    """`nox -l` itself lists every session the README names, and `nox` selects the default set."""
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--noxfile", str(NOXFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = re.findall(r"^([*-]) (\S+) ->", listed.stdout, re.MULTILINE)
    names = {name for _, name in rows}
    selected = {name.split("(")[0] for mark, name in rows if mark == "*"}
    expected = {"lint", "typecheck", "tests-3.11", "smoke", "docs", "phoenix", "bench"}
    expected |= {f"tests-3.{minor}" for minor in range(9, 14)}
    assert expected <= names, sorted(expected - names)
    assert selected == {
        "lint",
        "typecheck",
        *(f"tests-3.{minor}" for minor in range(9, 14)),
        "tests-oldest",
        "openai",
        "smoke",
        "docs",
    }
