"""Run the ```python examples of Markdown files, one fresh interpreter per file.

Blocks of one file run in order in the same namespace, like a tutorial. A block
whose fence reads ```python norun is shown but not run (it needs a server or a
key). Each file runs in a temporary working directory with no OTEL_*/OTELITE_*
variables set, so examples see otelite's defaults.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(path: Path) -> list[str]:
    """The runnable python blocks of a Markdown file."""
    return [body for info, body in FENCE.findall(path.read_text()) if "norun" not in info.split()]


def main(paths: list[str]) -> int:
    failures = 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env.pop("OPENAI_API_KEY", None)
    for name in paths:
        path = Path(name).resolve()
        code = blocks(path)
        if not code:
            print(f"{name}: no runnable examples")
            continue
        source = "\n\n".join(code)
        with tempfile.TemporaryDirectory() as work:
            script = Path(work) / "examples_of_this_page.py"
            script.write_text(source)
            result = subprocess.run(
                [sys.executable, str(script)],
                cwd=work,
                env={**env, "OTELITE_DOCS_ROOT": str(path.parent)},
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        status = "ok" if result.returncode == 0 else "FAILED"
        print(f"{name}: {len(code)} examples {status}")
        if result.returncode != 0:
            failures += 1
            print(result.stdout[-3000:])
            print(result.stderr[-3000:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
