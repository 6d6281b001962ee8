"""Team use of the real app: ``qa chat --auth-file`` puts a login in front of page and API.

The app is served on localhost with an auth file (its model: the session's engine, as a
team's replicas share one model server); without the login neither the page's config nor
the API answers, with it ``gradio_client`` gets a cited answer.
"""

from __future__ import annotations

import httpx
import pytest
from served_app import Served, answer_part, chat, start_app

START_TIMEOUT = 240
ANSWER_TIMEOUT = 180

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine_flags):
    base = tmp_path_factory.mktemp("team")
    users = base / "users.txt"
    users.write_text("# who may ask\nann:correct horse\n")
    served = start_app(base, START_TIMEOUT, extra=["--auth-file", str(users), *engine_flags])
    try:
        yield served
    finally:
        served.stop()


def test_without_the_login_nothing_is_served(server: Served):
    from gradio_client import Client

    config = httpx.get(f"{server.url}config", timeout=30, follow_redirects=True)
    assert config.status_code == 401, config.text[:300]
    with pytest.raises(Exception, match=r"(?i)auth|login|401"):
        Client(server.url, verbose=False)
    wrong = httpx.post(
        f"{server.url}login", data={"username": "ann", "password": "wrong"}, timeout=30
    )
    assert wrong.status_code >= 400


def test_with_the_login_the_api_answers(server: Served):
    from gradio_client import Client

    client = Client(server.url, auth=("ann", "correct horse"), verbose=False)
    result = chat(client, "Where were the missiles fired from?", ANSWER_TIMEOUT)
    assert "Sunan" in answer_part(result), result
