"""The index on a real Chroma server (``chroma run``), started and stopped by these tests.

Covers what a team running several app processes against one index relies on: ingest
into the server and cited answers from it, the bookkeeping kept in the server rather
than in local files, two concurrent writers of different content that never mix, a
writer killed midway that loses nothing, and the server going away and coming back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from served_app import ROOT, SEEDS, app_env
from servers import REFUSALS, ChromaServer, TokenProxy

from index.stores import open_store
from qa.config import Config
from qa.errors import IndexUnreachableError
from qa.pipeline import build_pipeline

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
    pipeline = build_pipeline(config)
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


def _published(config: Config) -> tuple[object, list[str], set[str]]:
    """The manifest, the published collection's ids, and the documents those ids belong to."""
    manifest, collection = open_store(config).open_index(config.collection, config.embed_model)
    got = collection.get(include=["metadatas"])
    return manifest, got["ids"], {m["doc"] for m in got["metadatas"]}


def test_two_ingests_of_different_content_never_mix(pipeline, config, tmp_path):
    """Two hosts ingest different folders at once: the index is one of them, whole."""
    folders = {}
    for name, text in {
        "a": "The Anchorage ferry carries 120 cars.\n\nIt sails twice a day.",
        "b": "The Bergen tunnel is 24 kilometres long.\n\nIt opened in 2020.",
    }.items():
        folder = tmp_path / name
        shutil.copytree(config.seeds_dir, folder)
        (folder / f"{name}.txt").write_text(text)
        folders[name] = folder
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "qa", "ingest", folder, "--chroma-url", config.chroma_url],
            cwd=ROOT,
            env=app_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders.values()
    ]
    answer = pipeline.ask("How far did the missiles fly?")  # readers answer meanwhile
    assert not answer.abstained and any("400" in c.quote for c in answer.citations)
    results = [(w.wait(timeout=600), *w.communicate()) for w in writers]
    codes = [code for code, _, _ in results]
    assert 0 in codes and set(codes) <= {0, 2}, results
    for code, _, err in results:
        if code == 2:  # the second to finish found the first published: one line, no mix
            assert err.count("\n") == 1 and "another ingest published" in err, err
    manifest, ids, docs = _published(config)
    expected = [{p.relative_to(f).as_posix() for p in f.rglob("*.txt")} for f in folders.values()]
    assert set(manifest.docs) in expected, manifest.docs
    assert docs == set(manifest.docs)  # every passage belongs to the published corpus
    assert len(ids) == len(set(ids)) == sum(d["passages"] for d in manifest.docs.values())
    again = qa_cli("ingest", config.seeds_dir, config=config)  # back to the seeds alone
    assert again.returncode == 0, again.stderr
    assert _published(config)[2] == {p.name for p in config.seeds_dir.glob("*.txt")}


def test_a_writer_killed_midway_loses_nothing(pipeline, config):
    """SIGKILL mid-write: the published index is untouched, answers go on, the next
    ingest succeeds and clears the dead writer's half-written generation."""
    before, ids, _ = _published(config)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from index.server_store import ServerStore\n"
            f"store = ServerStore({config.chroma_url!r}, {config.collection!r})\n"
            "with store.writing() as batch:\n"
            f"    base, target = batch.collections({config.collection!r}, "
            f"{config.embed_model!r}, rebuild=False)\n"
            "    target.add(ids=['half'], documents=['half-written'], embeddings=[[0.0] * 384])\n"
            "    print(batch.name, flush=True)\n"
            "    time.sleep(120)\n",
        ],
        cwd=ROOT, env=app_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        half = writer.stdout.readline().strip()
        assert half.startswith(f"{config.collection}-gen-"), half
    finally:
        writer.kill()
        writer.wait(timeout=30)
    after, ids_after, _ = _published(config)
    assert (after.generation, after.collection) == (before.generation, before.collection)
    assert sorted(ids_after) == sorted(ids) and "half" not in ids_after
    answer = pipeline.ask("Where were the missiles fired from?")
    assert "Sunan" in answer.text and not answer.abstained
    store = open_store(config)
    assert half in {c.name for c in store.generations(config.collection)}
    repaired = qa_cli("ingest", config.seeds_dir, config=config)
    assert repaired.returncode == 0, repaired.stderr
    assert "0 added, 0 removed" in repaired.stdout, repaired.stdout
    left = {c.name for c in store.generations(config.collection)}
    assert half not in left and len(left) <= 2, left  # the new one and the one it replaced


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


def _batch_write(store, family: str, docs: list[str]):
    """A writer's batch, started now, with one passage per document written (384-d)."""
    from index.server_store import ServerBatch

    batch = ServerBatch(store)
    _, target = batch.collections(family, "all-MiniLM-L6-v2", rebuild=False)
    target.add(
        ids=[f"{doc}:0" for doc in docs],
        documents=docs,
        metadatas=[{"doc": doc} for doc in docs],
        embeddings=[[1.0] + [0.0] * 383 for _ in docs],
    )
    return batch


def _manifest_for(docs: list[str]):
    from index.store import Manifest

    return Manifest(embed_model="all-MiniLM-L6-v2", docs={d: {"passages": 1} for d in docs})


def test_of_two_writers_that_both_pass_the_check_one_publishes_and_nothing_is_lost(
    chroma, tmp_path
):
    """The interleaving that lost the index before: both writers check that the manifest
    is unchanged, then both publish. The claim lets one through; the other stops with one
    line and removes only its own generation; the published one stays whole and is kept
    by every clean-up that follows."""
    from index.errors import IndexBusyError
    from index.server_store import ServerStore

    family = "race"
    store = ServerStore(chroma.url, family)
    first = _batch_write(store, family, ["start.txt"])
    first.publish(_manifest_for(["start.txt"]), {})
    a = _batch_write(store, family, ["a.txt"])
    b = _batch_write(store, family, ["b.txt"])
    assert a.superseded() is None and b.superseded() is None  # both pass the check
    b.superseded = lambda: None  # and b's check in publish passes too (the old window)
    a.publish(_manifest_for(["a.txt"]), {})
    with pytest.raises(IndexBusyError, match="another ingest published generation 2"):
        b.publish(_manifest_for(["b.txt"]), {})
    b.discard()  # as ServerStore.writing does with a batch that raised
    manifest = store.read_manifest()
    assert (manifest.generation, manifest.collection) == (2, a.name)
    assert store.lookup(b.name) is None  # the loser removed its own generation only
    assert store.lookup(first.name) is not None  # replaced: answers in flight may read it
    got = store.lookup(a.name).get(include=["metadatas"])
    assert [m["doc"] for m in got["metadatas"]] == ["a.txt"]
    # Two publishes later the replaced one goes; the published one never does.
    for round_ in range(2):
        batch = _batch_write(store, family, [f"r{round_}.txt"])
        batch.publish(_manifest_for([f"r{round_}.txt"]), {})
    names = {c.name for c in store.generations(family)}
    assert first.name not in names and a.name not in names and batch.name in names


def test_a_pointer_that_lags_is_followed_to_the_newest_generation(chroma):
    """A writer killed between its claim and the pointer write: readers and the next
    writer still find the generation it published (the markers are the truth)."""
    import json

    from index.server_store import POINTER_ID, ServerStore

    family = "lagging"
    store = ServerStore(chroma.url, family)
    first = _batch_write(store, family, ["one.txt"])
    first.publish(_manifest_for(["one.txt"]), {})
    stale = store._get([POINTER_ID])[POINTER_ID]
    second = _batch_write(store, family, ["two.txt"])
    second.publish(_manifest_for(["two.txt"]), {})
    store._put({POINTER_ID: stale})  # as if the pointer write never happened
    assert json.loads(stale)["generation"] == 1
    manifest = store.read_manifest()
    assert (manifest.generation, manifest.collection) == (2, second.name)
    third = _batch_write(store, family, ["three.txt"])
    assert third.number == 3
    store._delete([POINTER_ID])  # even with no pointer at all, the markers tell
    assert store.read_manifest().collection == second.name


def test_racing_writers_killed_at_random_never_lose_the_index(chroma, on_engine, tmp_path):
    """A short run of ``python -m eval.stress``: three real ``qa ingest`` of different
    folders at once each round, one SIGKILLed at a random moment, a reader answering with
    the real pipeline throughout; after every round the published index is whole, one
    writer's, and no answer failed (the 200-round run is in docs/scaling-out.md)."""
    from eval.stress import broken, run_stress

    config = on_engine(
        chroma_url=chroma.url,
        seeds_dir=SEEDS,
        store_dir=tmp_path / "unused",
        collection="stress",
        context_char_budget=1500,  # a prefix that stays across generations, as in the run
    )
    report = run_stress(config, tmp_path, rounds=4, writers=3, readers=1, kill=1.0, seed=7)
    print(f"\nstress: {report}")
    assert report["rounds"] == 4 and report["killed"] >= 1 and report["answers"] >= 1
    assert not broken(report), report["problems"]
