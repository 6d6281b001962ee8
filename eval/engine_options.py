"""Measure llama.cpp's CPU options on this machine: prefill and decode tokens/s per option.

``python -m eval.engine_options [--rounds N]`` starts the local engine once per option
set (the configured model, 2 slots), each round in the same order, and prints per option:
prefill tokens/s on a long fresh prompt (an upload, a cold start) and on a short one (a
check's own prompt), decode tokens/s for one answer alone and for two at once. Fresh
prompts start with a nonce so nothing comes from a cache. Compare rows of one run only:
the host's speed drifts from day to day.
"""

from __future__ import annotations

import argparse
import statistics
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from qa.config import Config
from qa.engine import EngineSettings, LocalEngine
from qa.prompts import rules

# llama.cpp's enums as xllamacpp exposes them.
FLASH_OFF, FLASH_ON = 0, 1
KV_Q8_0 = 8

OPTIONS: dict[str, Callable[[Any], None]] = {
    "shipped": lambda p: None,
    "flash attention off": lambda p: setattr(p, "flash_attn_type", FLASH_OFF),
    "flash attention on": lambda p: setattr(p, "flash_attn_type", FLASH_ON),
    "ubatch 128": lambda p: setattr(p, "n_ubatch", 128),
    "KV cache q8_0": lambda p: (
        setattr(p, "flash_attn_type", FLASH_ON),
        setattr(p, "cache_type_k", KV_Q8_0),
        setattr(p, "cache_type_v", KV_Q8_0),
    ),
    "no repacked weights": lambda p: setattr(p, "no_extra_bufts", True),
    "no polling": lambda p: (
        setattr(p.cpuparams, "poll", 0),
        setattr(p.cpuparams_batch, "poll", 0),
    ),
}

LONG_WORDS = 450  # ~600 tokens of fresh prompt
SHORT_WORDS = 110  # ~150 tokens
DECODE_TOKENS = 48


def _prompt(words: int) -> str:
    body = " ".join((rules() * 3).split()[: words - 8])
    return f"Note {uuid.uuid4().hex}. {body}\nAnswer:"


def _complete(client: httpx.Client, url: str, prompt: str, predict: int) -> dict[str, float]:
    body = {"prompt": prompt, "n_predict": predict, "cache_prompt": False, "ignore_eos": True,
            "temperature": 0.0}  # fmt: skip
    response = client.post(f"{url}/completion", json=body, timeout=600)
    response.raise_for_status()
    return response.json()["timings"]


def measure(name: str, config: Config) -> dict[str, float]:
    """One engine with option ``name``; its four speeds in tokens/s."""
    import xllamacpp

    original = xllamacpp.Server

    def server(params: Any) -> Any:
        OPTIONS[name](params)
        return original(params)

    xllamacpp.Server = server
    try:
        engine = LocalEngine(EngineSettings.from_config(config))
    finally:
        xllamacpp.Server = original
    try:
        with httpx.Client() as client:
            _complete(client, engine.url, "Hello", 2)  # first request: allocations
            long = _complete(client, engine.url, _prompt(LONG_WORDS), 1)
            short = _complete(client, engine.url, _prompt(SHORT_WORDS), DECODE_TOKENS)
            with ThreadPoolExecutor(2) as pool:
                both = list(pool.map(lambda _: _complete(client, engine.url, _prompt(20),
                                                         DECODE_TOKENS), range(2)))  # fmt: skip
    finally:
        engine.close()
    return {
        "prefill long": long["prompt_n"] / long["prompt_ms"] * 1000,
        "prefill short": short["prompt_n"] / short["prompt_ms"] * 1000,
        "decode alone": short["predicted_n"] / short["predicted_ms"] * 1000,
        "decode two at once": sum(b["predicted_n"] for b in both)
        / max(b["predicted_ms"] for b in both)
        * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=list(OPTIONS), choices=list(OPTIONS))
    args = parser.parse_args()
    config = Config.from_env(n_parallel=2)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.only}
    for round_number in range(1, args.rounds + 1):
        for name in args.only:
            runs[name].append(measure(name, config))
            speeds = ", ".join(f"{k} {v:.1f}" for k, v in runs[name][-1].items())
            print(f"round {round_number} {name}: {speeds}", flush=True)
    columns = list(next(iter(runs.values()))[0])
    print("\n| option | " + " | ".join(f"{c} (tok/s)" for c in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, results in runs.items():
        cells = [statistics.median(r[c] for r in results) for c in columns]
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in cells) + " |")


if __name__ == "__main__":
    main()
