"""Prompt files rewritten under a running app (in place, with cp, by git checkout): no read raises.

Real writer processes rewrite version and labels files while reader threads call get() and
compile() thousands of times. Once a good state exists no read raises, every compiled result is
one of the valid versions (never a mix, never empty), and after the writers stop the newest
content is served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from otelite.prompts import PromptFileError, PromptRegistry

ALPHA = "alpha {{x}} " + "a" * 4000
BETA = "beta {{x}} " + "b" * 4000
BETA_EDITED = "beta edited {{x}} " + "c" * 4000
GAMMA = "gamma {{x}} " + "g" * 4000
LEGACY_1 = "legacy one {{x}} " + "l" * 3000
LEGACY_2 = "legacy two {{x}} " + "m" * 3000
WRITE_SECONDS = 2.0

# One writer process: rewrites the files named in a JSON plan, in a loop, for WRITE_SECONDS.
# mode "inplace": open('w') and write in pieces with short sleeps; mode "cp": the cp command;
# mode "git": git checkout between two commits. The last write of each file is its last variant.
WRITER = textwrap.dedent(
    """
    import json, os, random, subprocess, sys, time
    mode, plan_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    plan = json.load(open(plan_path))
    rng = random.Random(os.getpid())
    writes = 0

    def in_place(path, data):
        with open(path, "w", encoding="utf-8", newline="") as handle:
            pieces = rng.randint(3, 8)
            step = max(1, len(data) // pieces)
            for start in range(0, len(data), step):
                handle.write(data[start:start + step])
                handle.flush()
                time.sleep(rng.uniform(0.0005, 0.004))

    def one_round(final):
        global writes
        if mode == "git":
            for commit in (plan["commits"] if final else [rng.choice(plan["commits"])]):
                subprocess.run(["git", "-C", plan["repo"], "-c", "advice.detachedHead=false",
                                "checkout", "-q", commit], check=True)
                writes += 1
            return
        for target, variants in plan["files"].items():
            chosen = variants[-1] if final else rng.choice(variants)
            if mode == "inplace":
                in_place(target, chosen)
            else:
                source = plan["sources"][chosen]
                subprocess.run(["cp", source, target], check=True)
            writes += 1
            time.sleep(rng.uniform(0, 0.01))

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        one_round(False)
    one_round(True)
    print(writes, flush=True)
    """
)


def _version_text(registry: PromptRegistry, name: str, version: int) -> str:
    return (registry.path / name / f"v{version:04d}.prompt").read_text(encoding="utf-8")


def _legacy_file(template: str) -> str:
    """A hand-written version file: no sha256, no body_sha256 (only the stability check applies)."""
    return "---\n" + json.dumps({"kind": "text", "version": 1}) + "\n---\n" + template


def _labels(production: int) -> str:
    return json.dumps({"production": production, "staging": 1}, indent=2) + "\n"


def _run_readers(
    registry: PromptRegistry,
    calls: list[tuple[str, dict[str, object], set[str]]],
    writers: list[subprocess.Popen[str]],
) -> tuple[int, list[str]]:
    """Reader threads call get()/compile() until the writers exit; returns (reads, faults)."""
    faults: list[str] = []
    reads = [0]
    done = threading.Event()

    def read() -> None:
        count = 0
        while not done.is_set():
            for name, kwargs, valid in calls:
                try:
                    result = registry.get(name, **kwargs).compile(x="X")  # type: ignore[arg-type]
                except Exception as exc:  # every raise is a fault
                    faults.append(f"{name} {kwargs}: {type(exc).__name__}: {exc}")
                    continue
                if result not in valid:
                    faults.append(f"{name} {kwargs}: invalid result {str(result)[:40]!r}")
                count += 1
        with lock:
            reads[0] += count

    lock = threading.Lock()
    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for writer in writers:
            out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
            assert int(out) > 10, "the writer barely wrote"
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    return reads[0], faults


def _start_writer(mode: str, plan: dict[str, object], tmp_path: Path) -> subprocess.Popen[str]:
    plan_path = tmp_path / f"plan-{mode}-{len(list(tmp_path.glob('plan-*')))}.json"
    plan_path.write_text(json.dumps(plan))
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, mode, str(plan_path), str(WRITE_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _skipped_reloads(caplog: pytest.LogCaptureFixture) -> int:
    """Reloads that met a file being written and kept the last good state."""
    return sum(
        1
        for r in caplog.records
        if r.levelno == logging.DEBUG and "last good state" in r.getMessage()
    )


def _compiled(template: str) -> str:
    return template.replace("{{x}}", "X")


def _wait_for(check: object, seconds: float = 5.0) -> None:
    """Poll until check() is true; generous bound (the reload interval is 0.25 s)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            pass
        assert time.monotonic() < deadline, "the newest content was not served in time"
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["inplace", "cp"])
def test_in_place_and_cp_writers_never_break_reads(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Version and labels files rewritten in place or by cp: no read raises, none is torn."""
    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", ALPHA, labels=["production", "staging"])
    registry.push("qa", BETA)
    legacy = registry.path / "legacy"
    legacy.mkdir()
    (legacy / "v0001.prompt").write_text(_legacy_file(LEGACY_1), encoding="utf-8")
    qa = registry.path / "qa"
    variants = {
        str(qa / "v0001.prompt"): [_version_text(registry, "qa", 1)],
        str(qa / "v0002.prompt"): [_version_text(registry, "qa", 2)],
        str(qa / "labels.json"): [_labels(1), _labels(2)],
        str(legacy / "v0001.prompt"): [_legacy_file(LEGACY_1), _legacy_file(LEGACY_2)],
    }
    sources: dict[str, str] = {}
    for i, text in enumerate({t for texts in variants.values() for t in texts}):
        source = tmp_path / f"source-{i}"
        source.write_text(text, encoding="utf-8")
        sources[text] = str(source)
    time.sleep(0.3)  # the hand-written legacy file settles (first load needs no retries)
    valid_qa = {_compiled(ALPHA), _compiled(BETA)}
    calls: list[tuple[str, dict[str, object], set[str]]] = [
        ("qa", {}, valid_qa),
        ("qa", {"label": "staging"}, {_compiled(ALPHA)}),
        ("qa", {"version": 1}, {_compiled(ALPHA)}),
        ("qa", {"version": 2}, {_compiled(BETA)}),
        ("legacy", {}, {_compiled(LEGACY_1), _compiled(LEGACY_2)}),
    ]
    for name, kwargs, _ in calls:  # a good state exists before the writers start
        registry.get(name, **kwargs).compile(x="X")  # type: ignore[arg-type]
    # Two writers racing on one file can leave it whole-looking but mixed, and stable: for a
    # hashed file the hash tells, for the hand-written one nothing can, so only one writer
    # rewrites that one (as an editor or a deploy would).
    hashed_only = {k: v for k, v in variants.items() if not k.startswith(str(legacy))}
    writers = [
        _start_writer(mode, {"files": variants, "sources": sources}, tmp_path),
        _start_writer(mode, {"files": hashed_only, "sources": sources}, tmp_path),
    ]
    caplog.set_level(logging.DEBUG, logger="otelite")
    reads, faults = _run_readers(registry, calls, writers)
    assert reads > 2000
    assert faults[:5] == [], f"{len(faults)} faulty reads out of {reads}"
    assert _skipped_reloads(caplog) > 0, "the readers never met a file being written"
    _wait_for(lambda: registry.get("qa").compile(x="X") == _compiled(BETA))
    _wait_for(lambda: registry.get("legacy").compile(x="X") == _compiled(LEGACY_2))
    assert registry.get("qa").version == 2
    assert registry.get("qa").labels == ("production",)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_git_checkout_between_commits_never_breaks_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """git checkout between two commits (label moved, version added, a version edited): no read raises."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "Test")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "commit.gpgsign", "false")
    registry = PromptRegistry(repo / "prompts")
    registry.push("qa", ALPHA, labels=["production", "staging"])
    registry.push("qa", BETA)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "A")
    first = _git(repo, "rev-parse", "HEAD")
    registry.push("qa", GAMMA, labels=["production"])
    edited = registry.path / "qa" / "v0002.prompt"
    edited.write_text(
        _version_text(registry, "qa", 2).replace(BETA, BETA_EDITED).replace('"body_sha256"', '"x"'),
        encoding="utf-8",
    )  # an edit by hand of an "immutable" version (its body hash no longer applies)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "B")
    second = _git(repo, "rev-parse", "HEAD")
    _git(repo, "-c", "advice.detachedHead=false", "checkout", "-q", first)
    time.sleep(0.3)  # settled
    reader = PromptRegistry(repo / "prompts")
    calls: list[tuple[str, dict[str, object], set[str]]] = [
        ("qa", {}, {_compiled(ALPHA), _compiled(GAMMA)}),
        ("qa", {"label": "staging"}, {_compiled(ALPHA)}),
        ("qa", {"version": 1}, {_compiled(ALPHA)}),
        ("qa", {"version": 2}, {_compiled(BETA), _compiled(BETA_EDITED)}),
    ]
    for name, kwargs, _ in calls:
        reader.get(name, **kwargs).compile(x="X")  # type: ignore[arg-type]
    writer = _start_writer(
        "git", {"repo": str(repo), "commits": [first, second]}, tmp_path
    )  # ends on the second commit
    caplog.set_level(logging.DEBUG, logger="otelite")
    reads, faults = _run_readers(reader, calls, [writer])
    assert reads > 2000
    assert faults[:5] == [], f"{len(faults)} faulty reads out of {reads}"
    assert _skipped_reloads(caplog) > 0, "the readers never met a file being written"
    _wait_for(lambda: reader.get("qa").compile(x="X") == _compiled(GAMMA))
    _wait_for(lambda: reader.get("qa", version=2).compile(x="X") == _compiled(BETA_EDITED))
    assert reader.get("qa").version == 3


def test_first_load_waits_for_a_file_being_written(tmp_path: Path) -> None:
    """With no good state yet, get() retries while a file is written in place, then serves it whole."""
    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", ALPHA)
    text = _version_text(registry, "qa", 1)
    path = registry.path / "qa" / "v0001.prompt"
    (tmp_path / "source").write_text(text, encoding="utf-8")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "text = open(sys.argv[2], encoding='utf-8').read()\n"
            "with open(sys.argv[1], 'w', encoding='utf-8') as f:\n"
            "    f.write(text[:100]); f.flush(); print('started', flush=True)\n"
            "    for i in range(100, len(text), 400):\n"
            "        time.sleep(0.02); f.write(text[i:i + 400]); f.flush()\n",
            str(path),
            str(tmp_path / "source"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "started"
    assert PromptRegistry(registry.path).get("qa").compile(x="X") == _compiled(ALPHA)
    writer.communicate(timeout=30)


def test_first_load_of_a_torn_file_raises_naming_it(tmp_path: Path) -> None:
    """A version file left half-written (no good state): a PromptFileError naming it, within a bound."""
    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", ALPHA)
    path = registry.path / "qa" / "v0001.prompt"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(PromptFileError) as info:
        PromptRegistry(registry.path).get("qa")
    assert str(info.value).startswith(
        f"{path}: the template does not match the header's body_sha256"
    )
    assert time.monotonic() - started < 10


def test_failed_reload_keeps_last_good_state_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version or labels file broken under a running app: the last good state is served, one warning each."""
    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", ALPHA, labels=["production"])
    registry.push("qa", BETA, labels=["staging"])
    reader = PromptRegistry(registry.path)
    assert reader.get("qa").compile(x="X") == _compiled(ALPHA)
    assert reader.get("qa", label="staging").compile(x="X") == _compiled(BETA)
    version = registry.path / "qa" / "v0001.prompt"
    version.write_text(version.read_text(encoding="utf-8")[:-100], encoding="utf-8")
    (registry.path / "qa" / "labels.json").write_text('{"production": 2', encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="otelite")
    deadline = time.monotonic() + 1.5  # several reload intervals and settle times
    while time.monotonic() < deadline:
        assert reader.get("qa").compile(x="X") == _compiled(ALPHA)
        assert reader.get("qa", label="staging").compile(x="X") == _compiled(BETA)
        time.sleep(0.005)
    warnings = [r.getMessage() for r in caplog.records if r.name == "otelite"]
    assert len(warnings) == 2, warnings
    assert any(str(version) in w and "body_sha256" in w for w in warnings)
    assert any("labels.json" in w and "not valid JSON" in w for w in warnings)
    assert all("serving the last good state" in w for w in warnings)


def test_own_writes_are_atomic_and_hashed(tmp_path: Path) -> None:
    """push/set_label replace files atomically: a raw reader never sees a partial labels or version file."""
    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", ALPHA, labels=["production"])
    registry.push("qa", BETA)
    code = textwrap.dedent(
        f"""
        from otelite.prompts import PromptRegistry
        r = PromptRegistry({str(registry.path)!r})
        for i in range(150):
            r.set_label("qa", "production", 1 + i % 2)
            if i % 10 == 0:
                r.push("qa", "v {{{{x}}}} %d " % i + "z" * 3000)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    seen = 0
    labels_path = registry.path / "qa" / "labels.json"
    while writer.poll() is None:
        assert set(json.loads(labels_path.read_text(encoding="utf-8"))) == {"production"}
        for path in (registry.path / "qa").glob("v*.prompt"):
            text = path.read_text(encoding="utf-8")
            header_line, body = text[4:].split("\n---\n", 1)
            header = json.loads(header_line)
            assert header["body_sha256"] == hashlib.sha256(body.encode()).hexdigest()
            seen += 1
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert seen > 0
    leftovers = sorted(p.name for p in (registry.path / "qa").iterdir() if p.name.endswith(".tmp"))
    assert leftovers == []


def test_first_load_of_a_file_that_keeps_changing_raises_naming_it(tmp_path: Path) -> None:
    """No good state and a writer that never stops: a PromptFileError naming the file, within a bound."""
    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", ALPHA)
    path = registry.path / "qa" / "v0001.prompt"
    plan = {"files": {str(path): [_version_text(registry, "qa", 1)]}, "sources": {}}
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, "inplace", str(plan_path), "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # the writer is rewriting the file
        started = time.monotonic()
        with pytest.raises(PromptFileError) as info:
            PromptRegistry(registry.path).get("qa")
        assert time.monotonic() - started < 5.5
        assert str(info.value).startswith(f"{path}: ")
        assert "and still was after 2 s: something keeps rewriting it in place" in str(info.value)
    finally:
        writer.communicate(timeout=60)
    assert writer.returncode == 0
