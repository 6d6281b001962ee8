"""The index on a real Chroma server (``chroma run``), started and stopped by these tests.

Covers what a team running several app processes against one index relies on: ingest
into the server and cited answers from it, the bookkeeping (manifest, writer's lease)
kept in the server rather than in local files, a second writer turned away with one
line while readers keep answering, and the server going away and coming back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from served_app import ROOT, SEEDS, app_env
from servers import REFUSALS, ChromaServer, TokenProxy

from index.store import open_store
from qa.config import Config
from qa.errors import IndexCorruptError, IndexUnreachableError
from qa.pipeline import Pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    with ChromaServer(tmp_path_factory.mktemp("chroma") / "data").running() as server:
        yield server


@pytest.fixture(scope="module")
def config(chroma, tmp_path_factory, on_engine):
    base = tmp_path_factory.mktemp("server-app")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    # store_dir points at an empty folder: nothing may be written there in server mode.
    return on_engine(chroma_url=chroma.url, seeds_dir=seeds, store_dir=base / "unused")


def qa_cli(*args: str | Path, config: Config) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "qa", *map(str, args), "--chroma-url", config.chroma_url]
    return subprocess.run(
        command, cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def pipeline(config):
    result = qa_cli("ingest", config.seeds_dir, config=config)
    assert result.returncode == 0, result.stderr
    pipeline = Pipeline(config)
    yield pipeline
    pipeline.close()


def test_answers_come_from_the_server_with_citations(pipeline, config):
    answer = pipeline.ask("Where were the missiles fired from?")
    assert "Sunan" in answer.text and not answer.abstained
    assert "Sunan" in answer.citations[0].quote
    # The bookkeeping lives in the server, not beside a local store.
    assert not Path(config.store_dir).exists()
    manifest = open_store(config).read_manifest()
    assert manifest is not None and manifest.generation >= 1
    collection = open_store(config).collection(config.collection, config.embed_model, create=False)
    ids = collection.get(include=[])["ids"]
    assert len(ids) == len(set(ids)) == sum(d["passages"] for d in manifest.docs.values())


def test_a_second_writer_gets_one_line_while_readers_answer(pipeline, config):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from index.store import ServerStore\n"
            f"store = ServerStore({config.chroma_url!r}, {config.collection!r})\n"
            "with store.writing():\n"
            "    print('holding', flush=True)\n"
            "    time.sleep(25)\n",
        ],
        cwd=ROOT,
        env=app_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        busy = qa_cli("ingest", config.seeds_dir, config=config)
        assert busy.returncode == 2
        lines = busy.stderr.strip().splitlines()
        assert len(lines) == 1 and "is writing to the index server" in lines[0], busy.stderr
        # A reader keeps answering from its snapshot while the other process writes.
        assert pipeline.store.writer_active()
        answer = pipeline.ask("How far did the missiles fly?")
        assert not answer.abstained and any("400" in c.quote for c in answer.citations)
    finally:
        holder.wait(timeout=60)
    again = qa_cli("ingest", config.seeds_dir, config=config)
    assert again.returncode == 0, again.stderr
    passages = sum(doc["passages"] for doc in open_store(config).read_manifest().docs.values())
    assert f"{passages} passages: 0 added, 0 removed, {passages} unchanged" in again.stdout


def test_server_stopped_mid_session_then_back(pipeline, chroma, config):
    chroma.stop()
    try:
        unreachable = f"index server unreachable at {chroma.url}"
        with pytest.raises(IndexUnreachableError, match=unreachable):
            pipeline.ask("Where were the missiles fired from?")
        down = qa_cli("ask", "Where were the missiles fired from?", config=config)
        assert down.returncode == 2
        assert down.stderr.count("\n") <= 1 and "index server unreachable" in down.stderr
    finally:
        chroma.start()
    answer = pipeline.ask("Where were the missiles fired from?")  # recovers by itself
    assert "Sunan" in answer.text


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_a_refused_token_is_named_as_such(pipeline, chroma, config, refusal):
    """The real server behind a proxy that checks a bearer token (``chroma run`` checks
    none): the configured token gets through to the index, a wrong or missing one is
    named as a refused token, by the API and by the command line in one line."""
    token = "team-secret-token"
    with TokenProxy(chroma.url, token, refusal).running() as proxy:
        guarded = config.replace(chroma_url=proxy.url)
        manifest = open_store(guarded.replace(chroma_token=token)).read_manifest()
        assert manifest is not None and manifest.docs, manifest  # through the proxy
        assert proxy.refused == 0
        refused = f"the index server at {proxy.url} refused the token (set QA_CHROMA_TOKEN)"
        for wrong in ("not-the-token", ""):
            with pytest.raises(IndexUnreachableError) as caught:
                open_store(guarded.replace(chroma_token=wrong)).read_manifest()
            assert refused in str(caught.value), caught.value
        command = [sys.executable, "-m", "qa", "docs", "--chroma-url", proxy.url]
        environment = {**app_env(), "QA_CHROMA_TOKEN": "not-the-token"}
        cli = subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
        )
        assert cli.returncode == 2, (cli.stdout, cli.stderr)
        assert cli.stderr.startswith(f"error: {refused}") and cli.stderr.count("\n") == 1
        assert proxy.refused >= 3  # each refusal came from the proxy, none was made up


def test_an_expired_lease_reads_as_an_interrupted_ingest_until_re_run(pipeline, config):
    store = open_store(config)
    # What a writer that died leaves behind: its lease, run out.
    store._put({"writer": '{"owner": "gone", "host": "elsewhere", "pid": 1, "expires": 0}'})
    with pytest.raises(IndexCorruptError, match="was interrupted; re-run `qa ingest`"):
        store.collection(config.collection, config.embed_model, create=False)
    repaired = qa_cli("ingest", config.seeds_dir, config=config)
    assert repaired.returncode == 0, repaired.stderr
    store.check_complete()
    assert not store.writer_active()
