"""The package as a library: its top-level names, their lazy loading, and the README's example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import fraudstream

README = Path(__file__).resolve().parents[2] / "README.md"


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, with no FRAUDSTREAM_* setting of this environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FRAUDSTREAM_")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def library_example() -> str:
    """The python code block of README.md's "Use as a library" section."""
    section = README.read_text().split("## Use as a library", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_every_exported_name_resolves_and_is_listed():
    assert sorted(fraudstream.__all__) == fraudstream.__all__
    for name in fraudstream.__all__:
        assert getattr(fraudstream, name).__name__ in (name, "transactions"), name
    assert set(fraudstream.__all__) <= set(dir(fraudstream))


def test_an_unknown_name_is_an_attribute_error():
    try:
        fraudstream.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("fraudstream.NoSuchThing resolved")


def test_importing_the_package_or_its_settings_loads_neither_catboost_nor_the_kafka_client(tmp_path):
    code = (
        "import sys\n"
        "from fraudstream import Settings\n"
        "import fraudstream.cli\n"
        "print(sorted(m for m in ('catboost', 'confluent_kafka', 'pandas') if m in sys.modules))\n"
    )
    result = run_python(code, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_readme_library_example_runs_on_a_fresh_clone(tmp_path):
    result = run_python(library_example(), tmp_path)

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ of 2000 flagged, top score (0|1)\.\d{3}", result.stdout.strip()), result.stdout
