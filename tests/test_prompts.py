"""The prompt registry: versions, labels, hot reload, strict templates, safety, and span links."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import otelite
from otelite.cli import main as cli_main
from otelite.prompts import (
    PromptError,
    PromptFileError,
    PromptNameError,
    PromptNotFoundError,
    PromptRegistry,
    PromptVariableError,
    escape,
)
from otelite.testing import capture_spans

CHAT = [
    {"role": "system", "content": "Answer from the context.\nContext:\n{{context}}"},
    {"role": "user", "content": "{{question}}"},
]
# What diff and git print after a last line without a newline.
NO_NEWLINE = "\\ No newline at end of file\n"


@pytest.fixture
def registry(tmp_path: Path) -> PromptRegistry:
    """An empty registry in a temporary directory."""
    return PromptRegistry(tmp_path / "prompts")


def test_push_get_text_and_chat(registry: PromptRegistry) -> None:
    """Text and chat prompts round-trip with their config, variables and metadata."""
    text = registry.push(
        "greet",
        "Hello {{name}}!",
        config={"model": "gpt-4o-mini", "temperature": 0},
        message="first",
        author="ana",
    )
    assert (text.name, text.version, text.kind, text.template, text.variables) == (
        "greet",
        1,
        "text",
        "Hello {{name}}!",
        ("name",),
    )
    assert text.config == {"model": "gpt-4o-mini", "temperature": 0}
    assert (text.author, text.message) == ("ana", "first")
    assert len(text.sha256) == 64
    assert text.created.endswith("+00:00")
    chat = registry.push("qa", messages=CHAT, labels=["production", "staging"])
    assert chat.messages == tuple(CHAT)
    assert chat.variables == ("context", "question")
    assert chat.labels == ("production", "staging")
    assert registry.list() == ["greet", "qa"]
    assert registry.get("qa").compile(context="OTLP is a protocol.", question="What is OTLP?") == [
        {"role": "system", "content": "Answer from the context.\nContext:\nOTLP is a protocol."},
        {"role": "user", "content": "What is OTLP?"},
    ]


def test_identical_content_is_not_a_new_version(registry: PromptRegistry) -> None:
    """Pushing the same content again returns the latest version; a change makes a new one."""
    assert registry.push("p", "a {{x}}").version == 1
    assert registry.push("p", "a {{x}}").version == 1
    assert registry.push("p", "a {{x}}", config={"temperature": 0}).version == 2
    assert [v.version for v in registry.versions("p")] == [1, 2]


def test_default_label_and_latest_fallback(registry: PromptRegistry) -> None:
    """get() uses the production label when set, otherwise the latest version."""
    registry.push("p", "one")
    registry.push("p", "two")
    assert registry.get("p").version == 2
    assert registry.get("p").label is None
    registry.set_label("p", "production", 1)
    got = registry.get("p")
    assert (got.version, got.label, got.template) == (1, "production", "one")
    assert registry.get("p", version=2).template == "two"


def test_rollback_and_history(registry: PromptRegistry) -> None:
    """Rollback returns the label to its previous version; the history shows every move."""
    registry.push("p", "one", labels=["production"], author="ana")
    registry.push("p", "two", labels=["production"], author="ana")
    assert registry.get("p").version == 2
    assert registry.rollback("p", "production", author="bo").version == 1
    history = registry.history("p")
    assert [(h["action"], h["label"], h["from"], h["to"], h["author"]) for h in history] == [
        ("set", "production", None, 1, "ana"),
        ("set", "production", 1, 2, "ana"),
        ("rollback", "production", 2, 1, "bo"),
    ]
    with pytest.raises(PromptError, match="no earlier version to roll back to"):
        registry.rollback("p", "production")


def test_diff(registry: PromptRegistry) -> None:
    """diff() is a unified diff of two versions."""
    registry.push("p", "line one\nline two\n")
    registry.push("p", "line one\nline 2\n")
    assert registry.diff("p", 1, 2) == (
        "--- p@1\n+++ p@2\n@@ -1,2 +1,2 @@\n line one\n-line two\n+line 2\n"
    )


def test_diff_of_prompts_without_a_final_newline(registry: PromptRegistry) -> None:
    """A last line without a newline is marked as diff and git mark it, never joined to the
    next line of the diff."""
    registry.push("p", "line one\nline two")
    registry.push("p", "line one\nline 2")
    assert registry.diff("p", 1, 2) == (
        "--- p@1\n+++ p@2\n@@ -1,2 +1,2 @@\n line one\n"
        "-line two\n\\ No newline at end of file\n"
        "+line 2\n\\ No newline at end of file\n"
    )
    registry.push("p", "line one\nline 2\n")  # only the final newline added
    assert registry.diff("p", 2, 3) == (
        "--- p@2\n+++ p@3\n@@ -1,2 +1,2 @@\n line one\n"
        "-line 2\n\\ No newline at end of file\n+line 2\n"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("one\ntwo", "one\n2", f" one\n-two\n{NO_NEWLINE}+2\n{NO_NEWLINE}"),
        ("one\ntwo", "one\n2\n", f" one\n-two\n{NO_NEWLINE}+2\n"),
        ("one\ntwo\n", "one\n2", f" one\n-two\n+2\n{NO_NEWLINE}"),
        ("one\ntwo\n", "one\n2\n", " one\n-two\n+2\n"),
        ("one\ntwo", "1\ntwo", f"-one\n+1\n two\n{NO_NEWLINE}"),
        ("a\rb\fc\nd", "a\rb\fc\ne", f" a\rb\fc\n-d\n{NO_NEWLINE}+e\n{NO_NEWLINE}"),
    ],
    ids=[
        "neither-ends-in-newline",
        "old-lacks-it",
        "new-lacks-it",
        "both-end-in-newline",
        "unchanged-last-line-lacks-it",
        "carriage-return-and-form-feed-inside-lines",
    ],
)
def test_diff_puts_every_line_on_its_own_line_as_diff_u_does(
    registry: PromptRegistry, old: str, new: str, expected: str
) -> None:
    """Lines end only at "\\n", as in diff -u and git; a last line without one is followed
    by the marker, so that the next line of the diff starts on a line of its own."""
    registry.push("p", old)
    registry.push("p", new)
    assert registry.diff("p", 1, 2) == f"--- p@1\n+++ p@2\n@@ -1,2 +1,2 @@\n{expected}"


@pytest.mark.parametrize("template", ["one\ntwo", "one\ntwo\n", "a\rb"])
def test_diff_of_a_version_with_itself_is_empty(registry: PromptRegistry, template: str) -> None:
    """Identical versions have an empty diff, whether or not they end in a newline."""
    registry.push("p", template)
    assert registry.diff("p", 1, 1) == ""


def test_cli_diff_prints_each_line_of_a_prompt_without_a_final_newline_on_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otelite prompts diff` prints the marker after a last line without a newline."""
    root = tmp_path / "prompts"
    registry = PromptRegistry(root)
    registry.push("p", "Answer: {{question}}")
    registry.push("p", "Answer briefly: {{question}}\n")
    capsys.readouterr()
    assert cli_main(["prompts", "--dir", str(root), "diff", "p", "1", "2"]) == 0
    assert capsys.readouterr().out == (
        "--- p@1\n+++ p@2\n@@ -1 +1 @@\n"
        "-Answer: {{question}}\n\\ No newline at end of file\n"
        "+Answer briefly: {{question}}\n"
    )


def test_strict_compile(registry: PromptRegistry) -> None:
    """A missing or unexpected variable is an error naming it, the prompt and the version."""
    version = registry.push("qa", messages=CHAT)
    with pytest.raises(PromptVariableError) as missing:
        version.compile(question="q")
    assert (
        str(missing.value)
        == "variable 'context' missing from prompt 'qa' v1; it expects context, question"
    )
    with pytest.raises(PromptVariableError) as typo:
        version.compile(context="c", question="q", questoin="q")
    assert (
        str(typo.value) == "prompt 'qa' v1 has no variable 'questoin' (expected: context, question)"
    )


def test_literal_braces_escape(registry: PromptRegistry) -> None:
    """\\{{ writes literal braces; escape() prepares text that must not be a placeholder."""
    version = registry.push("p", r"JSON: \{{\"a\": 1}} for {{who}}")
    assert version.variables == ("who",)
    assert version.compile(who="you") == 'JSON: {{\\"a\\": 1}} for you'
    assert escape("{{x}}") == "\\{{x}}"


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(
        alphabet=st.characters(blacklist_characters="{}\\", blacklist_categories=("Cs",)),
        max_size=40,
    ),
    value=st.text(max_size=60),
    other=st.text(max_size=60),
)
def test_compile_never_evaluates_and_round_trips(
    tmp_path_factory: pytest.TempPathFactory, before: str, value: str, other: str
) -> None:
    """Any text value is inserted exactly as given: no evaluation, no second substitution."""
    registry = PromptRegistry(tmp_path_factory.mktemp("prop"))
    version = registry.push("p", before + "{{x}}|{{ y }}" + before)
    compiled = version.compile(x=value, y=other)
    assert compiled == before + value + "|" + other + before


def test_values_cannot_reach_the_filesystem_or_code(
    registry: PromptRegistry, tmp_path: Path
) -> None:
    """Values that look like code or include directives stay text."""
    version = registry.push("p", "{{a}}")
    for value in (
        "{{a}}",
        "__import__('os').system('touch pwned')",
        "{% include '/etc/passwd' %}",
        "${HOME}",
        "{0.__class__}",
    ):
        assert version.compile(a=value) == value
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "a/b",
        "/abs",
        "..",
        "a..b",
        "labels",
        "con",
        "nul.txt",
        "",
        ".hidden",
        "a\\b",
        "x" * 101,
    ],
)
def test_bad_names_refused_and_nothing_written(
    registry: PromptRegistry, tmp_path: Path, name: str
) -> None:
    """Traversal, separators and reserved names are refused before anything touches the disk."""
    with pytest.raises(PromptNameError, match="is not allowed"):
        registry.push(name, "x")
    assert not (tmp_path / "evil").exists()
    assert not registry.path.exists() or list(registry.path.iterdir()) == []


def test_bad_label_names(registry: PromptRegistry) -> None:
    """Label names follow the same rules."""
    with pytest.raises(PromptNameError):
        registry.push("p", "x", labels=["../prod"])
    registry.push("p", "x")
    with pytest.raises(PromptNameError):
        registry.set_label("p", "a/b", 1)


def test_not_found_lists_what_exists(registry: PromptRegistry) -> None:
    """Unknown prompt, version or label: PromptNotFoundError with what does exist."""
    registry.push("alpha", "a", labels=["staging"])
    registry.push("alpha", "b")
    with pytest.raises(PromptNotFoundError, match=r"no prompt 'beta' in .*; prompts there: alpha"):
        registry.get("beta")
    with pytest.raises(PromptNotFoundError, match="has no version 7; versions: 1-2"):
        registry.get("alpha", version=7)
    with pytest.raises(PromptNotFoundError, match="has no label 'prod'; labels: staging"):
        registry.get("alpha", label="prod")
    with pytest.raises(PromptNotFoundError, match="has no version 9"):
        registry.set_label("alpha", "production", 9)


def test_corrupt_file_named_others_keep_working(registry: PromptRegistry) -> None:
    """A hand-broken version file gives an error naming it; other prompts are unaffected."""
    registry.push("good", "fine {{x}}")
    registry.push("bad", "x")
    path = registry.path / "bad" / "v0001.prompt"
    path.write_text("---\n{not json\n---\nx")
    fresh = PromptRegistry(registry.path)
    with pytest.raises(PromptFileError, match=r"v0001\.prompt: the header is not valid JSON"):
        fresh.get("bad")
    assert fresh.get("good").compile(x="y") == "fine y"
    (registry.path / "good" / "labels.json").write_text("[1]")
    with pytest.raises(PromptFileError, match=r"labels\.json: expected an object"):
        PromptRegistry(registry.path).get("good")


def test_files_are_readable_and_diffable(registry: PromptRegistry) -> None:
    """Version files are plain text with a one-line JSON header; chat messages use '=== role' lines."""
    registry.push("qa", messages=CHAT, message="first")
    path = registry.path / "qa" / "v0001.prompt"
    text = path.read_text()
    lines = text.split("\n")
    assert lines[0] == "---"
    header = json.loads(lines[1])
    assert header["version"] == 1
    assert header["message"] == "first"
    assert lines[2] == "---"
    assert (
        "\n".join(lines[3:])
        == "=== system\nAnswer from the context.\nContext:\n{{context}}\n=== user\n{{question}}\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_hot_reload_in_process(registry: PromptRegistry) -> None:
    """Another writer's label move and new versions are seen within a second, without restarting."""
    registry.push("p", "one", labels=["production"])
    assert registry.get("p").version == 1
    other = PromptRegistry(registry.path)
    other.push("p", "two", labels=["production"])
    deadline = time.monotonic() + 1.0
    while registry.get("p").version != 2:
        assert time.monotonic() < deadline, "label move not seen within a second"
        time.sleep(0.02)


def test_label_move_seen_by_running_process(registry: PromptRegistry) -> None:
    """A reader process running get() in a loop sees a label moved by this process within a second."""
    registry.push("p", "one", labels=["production"])
    registry.push("p", "two")
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from otelite.prompts import PromptRegistry
                r = PromptRegistry({str(registry.path)!r})
                assert r.get("p").version == 1
                print("ready", flush=True)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if r.get("p").version == 2:
                        print("seen", time.time(), flush=True)
                        break
                    time.sleep(0.01)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    moved_at = time.time()
    registry.set_label("p", "production", 2)
    out, _ = reader.communicate(timeout=30)
    word, seen_at = out.split()
    assert word == "seen"
    assert float(seen_at) - moved_at < 1.0


def test_concurrent_pushes_from_processes(registry: PromptRegistry) -> None:
    """4 processes pushing 25 versions each: exactly 100 versions, numbered 1-100, none lost."""
    code = textwrap.dedent(
        f"""
        import sys
        from otelite.prompts import PromptRegistry
        r = PromptRegistry({str(registry.path)!r})
        for i in range(25):
            r.push("shared", f"writer {{sys.argv[1]}} push {{i}}", labels=["latest-write"])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(n)], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    versions = PromptRegistry(registry.path).versions("shared")
    assert [v.version for v in versions] == list(range(1, 101))
    assert sorted(v.template for v in versions) == sorted(
        f"writer {n} push {i}" for n in range(4) for i in range(25)
    )
    history = PromptRegistry(registry.path).history("shared")
    assert len(history) == 100
    leftovers = [p.name for p in (registry.path / "shared").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_span_links_prompt_version(registry: PromptRegistry, openai_instrumented: None) -> None:
    """An instrumented call made with a compiled prompt carries its name, version and label."""
    from fakeopenai import Recorder, chat_completion, client, json_response

    registry.push("qa", messages=CHAT, labels=["production"])
    registry.push("summary", "Summarise: {{text}}", labels=["staging"])
    handler = Recorder(lambda request: json_response(chat_completion()))
    with capture_spans() as off:
        messages = registry.get("qa").compile(context="c", question="secret question")
        client(handler).chat.completions.create(model="gpt-4o-mini", messages=messages)
        text = registry.get("summary", label="staging").compile(text="t")
        client(handler).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
        )
    with capture_spans(capture_content=True) as on:
        client(handler).chat.completions.create(model="gpt-4o-mini", messages=messages)
    chat_span, text_span = (dict(s.attributes) for s in off.spans)
    assert (
        chat_span["gen_ai.prompt.name"],
        chat_span["gen_ai.prompt.version"],
        chat_span["otelite.prompt.label"],
    ) == ("qa", 1, "production")
    assert (
        text_span["gen_ai.prompt.name"],
        text_span["gen_ai.prompt.version"],
        text_span["otelite.prompt.label"],
    ) == ("summary", 1, "staging")
    assert "otelite.prompt.variables" not in chat_span
    assert json.loads(on.spans[0].attributes["otelite.prompt.variables"]) == {
        "context": "c",
        "question": "secret question",
    }
    # The compiled messages reach the API exactly as plain messages would.
    assert handler.bodies()[0]["messages"][1] == {"role": "user", "content": "secret question"}


def test_module_shortcut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """otelite.get_prompt uses the registry at OTELITE_PROMPTS_DIR."""
    monkeypatch.setenv("OTELITE_PROMPTS_DIR", str(tmp_path / "p"))
    PromptRegistry(tmp_path / "p").push("hi", "Hi {{who}}", labels=["production"])
    assert otelite.get_prompt("hi").compile(who="there") == "Hi there"
    assert otelite.get_prompt("hi", version=1).version == 1


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The prompts commands: push, list, show, label, rollback, diff, history, and a clear error."""
    root = str(tmp_path / "prompts")
    chat_file = tmp_path / "qa.txt"
    chat_file.write_text("=== system\nBe brief.\n=== user\n{{question}}\n")
    assert (
        cli_main(
            [
                "prompts",
                "--dir",
                root,
                "push",
                "qa",
                "--file",
                str(chat_file),
                "--label",
                "production",
                "-m",
                "first",
            ]
        )
        == 0
    )
    chat_file.write_text("=== system\nBe very brief.\n=== user\n{{question}}\n")
    assert (
        cli_main(["prompts", "--dir", root, "push", "qa", "--file", str(chat_file), "-m", "second"])
        == 0
    )
    assert cli_main(["prompts", "--dir", root, "label", "qa", "production", "2"]) == 0
    assert cli_main(["prompts", "--dir", root, "rollback", "qa", "production"]) == 0
    capsys.readouterr()
    assert cli_main(["prompts", "--dir", root, "list"]) == 0
    assert capsys.readouterr().out == "qa  v2  production=v1\n"
    assert cli_main(["prompts", "--dir", root, "show", "qa@2"]) == 0
    shown = capsys.readouterr().out
    assert "qa v2 — chat" in shown
    assert "=== system\nBe very brief.\n=== user\n{{question}}\n" in shown
    assert cli_main(["prompts", "--dir", root, "diff", "qa", "1", "2"]) == 0
    assert "-Be brief.\n+Be very brief.\n" in capsys.readouterr().out
    assert cli_main(["prompts", "--dir", root, "history", "qa"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(None, 2)[2] for line in lines] == [
        "set      production: (none) -> v1",
        "set      production: v1 -> v2",
        "rollback production: v2 -> v1",
    ]
    assert cli_main(["prompts", "--dir", root, "show", "../etc"]) == 2
    assert "prompt name '../etc' is not allowed" in capsys.readouterr().err


@settings(max_examples=100, deadline=None)
@given(
    contents=st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)),
            max_size=50,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_chat_files_round_trip(
    tmp_path_factory: pytest.TempPathFactory, contents: list[str]
) -> None:
    """Any message text (including lines that look like '=== role') survives the file format exactly."""
    registry = PromptRegistry(tmp_path_factory.mktemp("chat"))
    messages = [
        {"role": "user" if i % 2 else "system", "content": c} for i, c in enumerate(contents)
    ]
    registry.push("p", messages=messages)
    # push() reads the version back from its file (a new registry would add a settle time).
    assert list(registry.get("p").messages or ()) == messages


def test_unstorable_text_refused(registry: PromptRegistry) -> None:
    """Text that cannot be stored as UTF-8 is refused before anything is written."""
    with pytest.raises(PromptError, match="cannot be stored as UTF-8"):
        registry.push("p", "bad \ud800 text")
    assert not (registry.path / "p").exists() or registry.list() == []


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _tree(root: Path) -> set[str]:
    """Every file and folder under root, relative, folders ending with '/'."""
    return {p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in root.rglob("*")}


def test_git_status_shows_only_reviewable_files(tmp_path: Path) -> None:
    """After pushes and label moves, git sees only version, label and history files (no locks)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    registry = PromptRegistry(repo / "prompts")
    registry.push("qa", "one", labels=["production"])
    registry.push("qa", "two", labels=["staging"])
    registry.set_label("qa", "production", 2)
    registry.rollback("qa", "production")
    registry.push("greet", "hi {{name}}")
    status = _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == [
        "?? prompts/greet/v0001.prompt",
        "?? prompts/qa/history.jsonl",
        "?? prompts/qa/labels.json",
        "?? prompts/qa/v0001.prompt",
        "?? prompts/qa/v0002.prompt",
    ]
    assert _tree(registry.path / ".locks") == {".gitignore", "greet.lock", "qa.lock"}
    assert (registry.path / ".locks" / ".gitignore").read_text() == (
        "# otelite prompt registry locks: never commit them\n*\n"
    )
    assert registry.list() == ["greet", "qa"]


def test_documented_tree_matches_disk(tmp_path: Path) -> None:
    """The registry tree shown in docs/prompts.md is exactly what a push and label moves create."""
    docs = (Path(__file__).parents[1] / "docs" / "prompts.md").read_text()
    block = docs.split("```text\nprompts/\n", 1)[1].split("```", 1)[0]
    documented: set[str] = set()
    parents: list[str] = []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2 - 1
        name = line.split()[0]
        parents[depth:] = [name]
        documented.add("".join(parents))
    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", messages=CHAT, config={"model": "gpt-4o-mini"}, labels=["staging"])
    registry.push("qa", "v2 {{question}}", labels=["production", "staging"])
    assert documented == _tree(registry.path)
    assert json.loads((registry.path / "qa" / "labels.json").read_text()) == {
        "production": 2,
        "staging": 2,
    }


def test_prompt_link_survives_pickling_into_a_process_that_never_loaded_the_registry(
    tmp_path: Path,
) -> None:
    """Calls are not scanned for prompt links until the registry's module is loaded; a compiled
    prompt unpickled in a fresh process (a worker pool) loads it, so its link is still found."""
    import pickle

    registry = PromptRegistry(tmp_path / "prompts")
    registry.push("qa", messages=CHAT, labels=["production"])
    messages = registry.get("qa").compile(context="c", question="q")
    blob = tmp_path / "messages.pickle"
    blob.write_bytes(pickle.dumps(messages))
    code = (
        "import pickle, sys, otelite\n"
        "from otelite import _registries\n"
        "from otelite._integrations.openai import _fields\n"
        "otelite.instrument_openai()\n"
        "before = _registries.prompt_links\n"
        "plain = _fields._prompt_link({'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "messages = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "link = _fields._prompt_link({'messages': messages})\n"
        "print(before, plain, _registries.prompt_links, link.name, link.version, link.label)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(blob)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "None", "True", "qa", "1", "production"]
