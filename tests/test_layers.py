"""The indexer knows nothing of the answering side: imports run one way, qa -> index."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import index.config
import index.errors
import index.types
import qa.config
import qa.errors
import qa.types

INDEX_DIR = Path(__file__).resolve().parents[1] / "index"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names, anywhere in the file (functions too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_index_files_exist():
    assert len(list(INDEX_DIR.glob("*.py"))) > 5


QA_DIR = INDEX_DIR.parent / "qa"
# Who may not import whom: index <- qa <- eval (the evaluation's CLI commands register by
# entry point, so qa needs no import of eval).
FORBIDDEN = [(path, "qa") for path in sorted(INDEX_DIR.rglob("*.py"))] + [
    (path, "eval") for path in sorted(QA_DIR.rglob("*.py"))
]


@pytest.mark.parametrize(
    ("path", "above"), FORBIDDEN, ids=lambda x: x.name if isinstance(x, Path) else x
)
def test_imports_run_one_way(path: Path, above: str):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    offending = [
        f"{path.name}:{line} imports {name}"
        for line, name in _imported_modules(tree)
        if name == above or name.startswith(f"{above}.")
    ]
    assert not offending, offending


@pytest.mark.parametrize("package", ["index", "qa", "eval"])
def test_no_two_modules_of_a_package_import_each_other(package: str):
    """Within each package imports form no cycle (a function-level import counts too)."""
    folder = INDEX_DIR.parent / package
    graph = {
        f"{package}.{path.stem}": {
            name
            for _, name in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
            if name.startswith(f"{package}.")
        }
        for path in folder.glob("*.py")
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, {m}))
    assert not cycles, cycles


def test_the_evaluation_commands_reach_the_cli():
    from qa.cli import build_parser

    args = build_parser().parse_args(["bench", "--per-kind", "2", "--quick"])
    assert args.command == "bench" and args.per_kind == 2 and args.quick


def test_the_walker_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from qa.config import Config\n    import qa\n")
    assert [name for _, name in _imported_modules(tree)] == ["qa.config", "qa"]


def test_config_extends_the_index_config():
    config = qa.config.Config()
    assert isinstance(config, index.config.IndexConfig)
    index_fields = set(index.config.IndexConfig.model_fields)
    assert index_fields <= set(qa.config.Config.model_fields)
    assert index_fields >= {"seeds_dir", "store_dir", "embed_model", "passage_max_chars"}


def test_config_from_env_reads_both_layers(monkeypatch):
    monkeypatch.setenv("QA_SEEDS_DIR", "docs")
    monkeypatch.setenv("QA_PASSAGE_MAX_CHARS", "300")
    monkeypatch.setenv("QA_TOP_K", "7")
    monkeypatch.setenv("QA_SECOND_LOOK", "off")
    config = qa.config.Config.from_env(store_dir="elsewhere", model=None)
    assert type(config) is qa.config.Config
    assert config.seeds_dir == Path("docs") and config.store_dir == Path("elsewhere")
    assert config.passage_max_chars == 300 and config.top_k == 7
    assert config.second_look is False and config.model == "default"
    assert type(config.replace(top_k=1)) is qa.config.Config


@pytest.mark.parametrize(
    "name",
    [
        "QAError",
        "SeedsNotFoundError",
        "IndexMissingError",
        "IndexCorruptError",
        "EmbeddingMismatchError",
        "IndexBusyError",
        "IndexUnreachableError",
        "ModelIntegrityError",
    ],
)
def test_errors_are_the_same_classes(name: str):
    assert getattr(qa.errors, name) is getattr(index.errors, name)


def test_qa_only_errors_share_the_base():
    for name in ("InvalidQuestionError", "LLMError"):
        error = getattr(qa.errors, name)
        assert issubclass(error, index.errors.QAError) and not hasattr(index.errors, name)
    assert index.errors.QAError.exit_code == 2
    # A malformed setting is found while the index's own settings are read: one class.
    assert qa.errors.ConfigError is index.errors.ConfigError


def test_passage_is_one_class():
    assert qa.types.Passage is index.types.Passage
