"""What a pip user gets (issue 15, item 7): licence, metadata, the sdist's tests, an unbuilt checkout.

Building the wheel and sdist takes a compiler and a minute, so it is checked by hand
(``python -m build``; see CHANGELOG.md); here: the files and settings that make them right.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_file_and_spdx_field() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT", "the SPDX expression, not the deprecated table"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["urls"] and (ROOT / "CHANGELOG.md").is_file()


def test_the_wheel_leaves_generated_c_out_and_the_sdist_carries_the_tests() -> None:
    assert "*.c" in PYPROJECT["tool"]["setuptools"]["exclude-package-data"]["sriov"]
    manifest = (ROOT / "MANIFEST.in").read_text().split("\n")
    for folder in ("tests", "examples", "fuzz", "benchmarks"):  # what the tests import, run or lint
        assert f"graft {folder}" in manifest, folder
    assert '"-s"' in (ROOT / "setup.py").read_text(), "the extension is linked stripped"


def test_tests_use_no_path_outside_the_checkout() -> None:
    outside = re.compile(r"""["']/work/|["']/home/|parents\[2\]|["']\.\./|shared/pcaps|"shared\"""")
    for path in sorted(p for p in (ROOT / "tests").glob("*.py") if p.name != "test_packaging.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not outside.search(line), f"{path.name}:{number}: {line.strip()}"


def test_an_unbuilt_checkout_says_so() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sriov._fastpath':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import sriov\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SRIOV_NO_EXTENSIONS"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", blocker], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "the compiled extension is not built: run pip install -e ." in last, last
    assert "circular import" not in done.stderr
