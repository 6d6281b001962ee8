"""The built wheel carries what the installed program needs at run time (no model run)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_wheel_holds_the_judge_model_and_the_calibration_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("qa_chat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "qa/answerability.json" in names  # the judge: start-up fails without it
    assert "eval/signals/squad2-calibration.jsonl" in names  # what it is fitted from
    assert "eval/qa_set.jsonl" in names and "eval/thresholds.toml" in names
    assert "eval/data/squad2/squad2-dev-6-articles.json" in names
    assert "eval/data/squad2/README.md" in names  # the data's attribution travels with it
