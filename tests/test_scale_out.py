"""Two app replicas behind one Chroma server and one LLM server, all real, on localhost.

The deployment README's "Scaling out" describes: ``chroma run``, ``qa serve-model``
(llama.cpp's own server, 2 slots) and N x ``qa chat --chroma-url … --openai-base-url …``.
Four concurrent browser sessions (gradio_client), two on each replica, each ask a question
and its follow-up while another process ingests one more document into the same index: no
answer may be lost or crossed with another session's (a follow-up is read with its own
session's history), and the index keeps one copy of every passage. The full four-turn
conversations, with two sessions waiting in line, are test_robustness's load test.
Throughput and latency are printed (``-s``), not asserted (``python -m eval.load``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from served_app import ROOT, SEEDS, app_env, client_for, start_app
from servers import ChromaServer, LlamaServer, default_model

from eval.load import markdown_table, run_load
from index.stores import open_store
from qa.config import Config

pytestmark = pytest.mark.slow
START_TIMEOUT = 300


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    base = tmp_path_factory.mktemp("scale-out")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    chroma = ChromaServer(base / "chroma")
    llm = LlamaServer(default_model(), base / "llm.log", parallel=2)
    replicas = []
    try:
        chroma.start()
        llm.start()
        flags = [
            "--chroma-url", chroma.url,
            "--openai-base-url", llm.url, "--openai-model", "qwen-local",
        ]  # fmt: skip
        for number in range(2):
            folder = base / f"replica-{number}"
            folder.mkdir()
            replicas.append(start_app(folder, START_TIMEOUT, seeds, flags))
        yield Config.from_env(chroma_url=chroma.url, seeds_dir=seeds), replicas
    finally:
        for replica in replicas:
            replica.stop()
        llm.stop()
        chroma.stop()


SESSIONS, QUESTIONS = 4, 2  # each session: its first question and the follow-up


def test_two_replicas_four_sessions_while_another_process_ingests(deployment):
    config, replicas = deployment
    harbor = config.seeds_dir / "harbor.txt"
    harbor.write_text(
        "Dredging the Millbrook harbor will cost 12 million dollars, the port authority said. "
        "The work starts next spring.\n"
    )
    command = [sys.executable, "-m", "qa", "ingest", str(config.seeds_dir),
               "--chroma-url", config.chroma_url]  # fmt: skip
    ingest = subprocess.Popen(
        command, cwd=ROOT, env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    report = run_load(
        [r.url for r in replicas], sessions=SESSIONS, questions=QUESTIONS, timeout=900
    )
    _, err = ingest.communicate(timeout=600)
    print("\n" + markdown_table(report))
    assert report["questions"] == SESSIONS * QUESTIONS
    assert report["lost"] == 0 and report["mixed"] == 0, "\n".join(report["problems"])
    per_replica = SESSIONS * QUESTIONS // len(replicas)
    assert all(counts["questions"] == per_replica for counts in report["per_replica"].values())
    # The concurrent ingest (one more document) either finished or was turned away with
    # one line; the replicas answered from their snapshot meanwhile.
    assert ingest.returncode == 0 or (ingest.returncode == 2 and err.count("\n") <= 1), err
    store = open_store(config)
    manifest = store.read_manifest()
    ids = store.collection(config.collection, config.embed_model, create=False).get(include=[])[
        "ids"
    ]
    assert len(ids) == len(set(ids)) == sum(d["passages"] for d in manifest.docs.values())
    for replica in replicas:
        assert replica.process.poll() is None, replica.log()[-3000:]

    # Once the document is in (ingested again if the first try was turned away), every
    # replica answers from the new generation: the new fact, cited from the new file.
    if ingest.returncode != 0:
        again = subprocess.run(command, cwd=ROOT, env=app_env(), capture_output=True, timeout=600)
        assert again.returncode == 0, again.stderr
    assert "harbor.txt" in open_store(config).read_manifest().docs
    text = harbor.read_text()
    for replica in replicas:
        answer = (
            client_for(replica)
            .submit("What will the Millbrook harbor dredging cost?", api_name="/ask")
            .result(timeout=600)
        )
        assert not answer["abstained"] and "12 million" in answer["text"], answer
        cited = [c for c in answer["citations"] if c["doc"] == "harbor.txt"]
        assert cited and all(text[c["start"] : c["end"]] == c["quote"] for c in cited), answer
