"""Model files: assembly from part packages, SHA-256 checks, refusing wrong files."""

import hashlib
import textwrap

import pytest

from qa import models
from qa.config import Config
from qa.errors import ModelIntegrityError
from qa.models import MODELS, ModelSpec, assemble, resolve_model_path, verify


@pytest.fixture
def tiny_spec(tmp_path, monkeypatch):
    """A three-part 'model' shipped the way the real ones are: one module per part."""
    chunks = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 70]
    names = []
    for i, chunk in enumerate(chunks, 1):
        name = f"fake_model_part{i}"
        package = tmp_path / "site" / name
        package.mkdir(parents=True)
        (package / "part.bin").write_bytes(chunk)
        (package / "__init__.py").write_text(
            textwrap.dedent(
                """
                import os
                def get_part_path():
                    return os.path.join(os.path.dirname(__file__), "part.bin")
                """
            )
        )
        names.append(name)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(chunks)
    spec = ModelSpec(
        "tiny", "tiny.gguf", tuple(names), len(whole), hashlib.sha256(whole).hexdigest()
    )
    monkeypatch.setitem(MODELS, "tiny", spec)
    return spec, tmp_path / "cache"


def test_parts_are_assembled_and_verified(tiny_spec):
    spec, cache = tiny_spec
    path = resolve_model_path("tiny", cache)
    assert path == cache / "tiny.gguf"
    assert verify(path, spec)
    assert not list(cache.glob("*.partial-*"))


def test_truncated_cached_model_is_rebuilt_from_the_parts(tiny_spec):
    spec, cache = tiny_spec
    path = resolve_model_path("tiny", cache)
    with open(path, "r+b") as handle:
        handle.truncate(10)
    assert not verify(path, spec)
    assert resolve_model_path("tiny", cache) == path
    assert verify(path, spec)


def test_wrong_parts_are_refused(tiny_spec, monkeypatch):
    spec, cache = tiny_spec
    monkeypatch.setitem(
        MODELS, "tiny", ModelSpec(spec.name, spec.filename, spec.part_modules, spec.size, "0" * 64)
    )
    with pytest.raises(ModelIntegrityError, match="reinstall"):
        resolve_model_path("tiny", cache)
    assert not (cache / "tiny.gguf").exists()


def test_missing_part_package_is_named(tiny_spec, monkeypatch):
    _, cache = tiny_spec
    broken = ModelSpec("x", "x.gguf", ("no_such_part_module",), 1, "0" * 64)
    monkeypatch.setitem(MODELS, "x", broken)
    with pytest.raises(ModelIntegrityError, match="no-such-part-module"):
        assemble(broken, cache)


def test_user_supplied_files_are_checked(tmp_path):
    with pytest.raises(ModelIntegrityError, match="does not exist"):
        resolve_model_path(str(tmp_path / "missing.gguf"), tmp_path)
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelIntegrityError, match="not a GGUF"):
        resolve_model_path(str(text), tmp_path)
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 10)
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        resolve_model_path(str(fake), tmp_path, expected_sha256="ab" * 32)
    assert resolve_model_path(str(fake), tmp_path) == fake


@pytest.mark.slow
def test_the_real_default_model_matches_its_pinned_hash():
    config = Config.from_env()
    path = resolve_model_path("default", config.model_cache_dir)
    assert path.stat().st_size == MODELS["default"].size
    assert models.sha256_of(path) == MODELS["default"].sha256


@pytest.mark.slow
def test_a_truncated_gguf_is_refused_with_a_clear_message(tmp_path):
    from qa.engine import start_local_engine

    config = Config.from_env()
    real = resolve_model_path("fast", config.model_cache_dir)
    broken = tmp_path / "broken.gguf"
    with open(real, "rb") as source, open(broken, "wb") as target:
        target.write(source.read(8 * 1024 * 1024))  # the header and a little of the weights
    with pytest.raises(ModelIntegrityError, match="could not load"):
        start_local_engine(config.replace(model=str(broken)))
