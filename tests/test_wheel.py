"""The built wheel carries what the installed program needs at run time (no model run)."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def build_wheel(folder: Path) -> Path:
    """``pip wheel`` of this tree (no dependencies), into ``folder``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(folder), str(ROOT)],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    (wheel,) = folder.glob("qa_chat-*.whl")
    return wheel


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_direct_import_is_a_declared_dependency():
    """A module that qa/, index/ or eval/ imports comes from a dependency pyproject names."""
    import ast
    import importlib.metadata
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_canonical(re.split(r"[=<>!~ ;\[]", d)[0]) for d in project["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    imported: set[str] = set()
    for path in [p for folder in ("qa", "index", "eval") for p in (ROOT / folder).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"qa", "index", "eval"}
    undeclared = {
        module: providers.get(module)
        for module in third_party
        if not declared & {_canonical(d) for d in providers.get(module, [module])}
    }
    assert not undeclared, undeclared


def test_the_wheel_holds_the_judge_model_and_the_calibration_data(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("qwen2.5-coder-1.5b-instruct-q4_k_m", "qwen2.5-coder-0.5b-instruct"):
        assert f"qa/judges/{model}.json" in names  # each bundled model's judge
    assert "eval/signals/squad2-calibration.jsonl" in names  # what it is fitted from
    assert "eval/signals/squad2-calibration.model.json" in names  # ... and on which model
    assert "eval/qa_set.jsonl" in names and "eval/thresholds.toml" in names
    assert "eval/data/squad2/squad2-dev-6-articles.json" in names
    assert "eval/data/squad2/README.md" in names  # the data's attribution travels with it


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_venv_answers_a_question(tmp_path):
    """``pip install qa_chat-*.whl`` into an empty venv, then ``qa ask`` from elsewhere.

    The venv gets the wheel alone; its dependencies are this environment's, on
    PYTHONPATH (reinstalling ~3 GB of them from the registry is .ci/run's job). The
    source tree is nowhere on the path: the installed package must carry its own data
    (the judge's model), its entry points (``qa``, the evaluation's commands) and code.
    """
    import sysconfig

    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "-q", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    shutil.copytree(ROOT / "seeds", work / "seeds")
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": sysconfig.get_paths()["purelib"],  # the dependencies only
    }

    def qa(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(venv / "bin" / "qa"), *args], cwd=work, env=env, capture_output=True,
            text=True, timeout=600,
        )  # fmt: skip

    where = qa("--version")
    assert where.returncode == 0 and where.stdout.startswith("qa "), where.stderr
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import qa, eval.commands; print(qa.__file__)"],
        env=env, capture_output=True, text=True, cwd=work,
    )  # fmt: skip
    assert located.stdout.startswith(str(venv)), located  # the wheel's copy, not the tree's
    assert qa("bench", "--help").returncode == 0  # the evaluation's command registered
    answer = qa("ask", "How far did the missiles fly?")
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert "400" in answer.stdout and "[1]" in answer.stdout, answer.stdout
