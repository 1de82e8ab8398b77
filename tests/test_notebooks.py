"""The tutorial notebooks run top to bottom (in tiny mode) and are stored without outputs."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NBS = sorted((Path(__file__).resolve().parents[1] / "nbs").glob("*.ipynb"))


def test_the_four_tutorials_exist():
    assert [p.name for p in NBS] == ["00_data.ipynb", "01_language_model.ipynb", "02_generate.ipynb",
                                     "03_classifier.ipynb"]


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_notebook_runs(path, shared_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CLICKBAIT_TINY", "1")
    monkeypatch.setenv("CLICKBAIT_SHARED", str(shared_dir))
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert list(tmp_path.iterdir()) == []  # the notebook cleaned up after itself
