"""The README's API tour runs as written in an empty folder, and its claims hold."""

from __future__ import annotations

import re
from pathlib import Path

import sriov

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert first_block is not None
    lines = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert lines == ["pip install -e '.[test]' && sriov run", "python -m pytest -q"]


def test_the_api_tour_runs(tmp_path: Path, monkeypatch) -> None:
    """Verbatim, in an empty folder: the tour makes its own capture."""
    monkeypatch.chdir(tmp_path)
    assert not list(tmp_path.iterdir())
    namespace: dict = {}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    result, got = namespace["result"], namespace["got"]
    assert len(result) == 300
    assert result.counts()["DELIVERED"] > 0
    assert 0 < len(got) <= 64
    assert len(sriov.read_pcap(tmp_path / "vm0-vf1.pcap")) == len(got)
    assert namespace["kept"] == got, "Batch.copy() keeps the poll's frames"
    assert namespace["nic1"].link_up and namespace["nic0"].mac == "02:00:00:00:00:10"
    assert len(namespace["batch"]) == 100_000
