"""The `clickbait` command: output, exit codes, one-line errors (no tracebacks) for user mistakes."""
import subprocess
import sys
import time

from clickbait.cli import main
from clickbait.tokenizer import count_words


def test_generate_prints_n_headlines(tiny_bundle_path, capsys):
    assert main(["generate", "-n", "7", "--min-len", "3", "--max-len", "9", "--seed", "1",
                 "--model", str(tiny_bundle_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all(3 <= count_words(line) <= 9 for line in lines)


def test_user_errors_exit_2_with_one_line(tiny_bundle_path, tmp_path, capsys):
    assert main(["generate", "-n", "0", "--model", str(tiny_bundle_path)]) == 2
    assert main(["generate", "--model", str(tmp_path / "nope")]) == 2
    assert main(["eda", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "n must be at least 1" in err[0] and "no such bundle" in err[1]
    assert "Traceback" not in "\n".join(err)


def test_score_and_eda(tiny_bundle_path, tmp_path, capsys):
    src = tmp_path / "h.txt"
    src.write_text("17 Things About Dogs\nObama signs bill\n", encoding="utf-8")
    assert main(["score", str(src), "--model", str(tiny_bundle_path)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[1] for r in rows] == ["17 Things About Dogs", "Obama signs bill"] and all(float(r[0]) < 0 for r in rows)
    assert main(["eda", str(src), "--plot", str(tmp_path / "p.png")]) == 0
    assert "headlines: 2" in capsys.readouterr().out and (tmp_path / "p.png").exists()


def test_import_is_fast():
    start = time.time()
    subprocess.run([sys.executable, "-c", "import clickbait"], check=True)
    assert time.time() - start < 3.0
