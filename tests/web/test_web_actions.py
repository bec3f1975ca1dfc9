"""The dashboard's actions over plain HTTP: each one a POST carrying the page's CSRF token,
refused without it or from another site, and refused altogether when read-only."""

from __future__ import annotations

import re
from types import ModuleType

import states
from starlette.testclient import TestClient

from alsek.web import create_app
from alsek.web.security import CSRF_COOKIE, CSRF_FIELD


def _token(client: TestClient, path: str = "/queues/ops") -> str:
    """Load ``path`` (which sets the CSRF cookie) and return the token its forms carry."""
    page = client.get(path)
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.text)
    assert found is not None, page.text
    assert client.cookies.get(CSRF_COOKIE) == found.group(1)
    return found.group(1)


def _post(client: TestClient, path: str, **fields: object) -> object:
    return client.post(path, data=fields, follow_redirects=False)


def test_pause_and_resume_with_the_page_token(ops: ModuleType, client: TestClient) -> None:
    states.ready(ops, 1)
    token = _token(client, "/queues/ops")
    paused = _post(client, "/actions/pause", csrf=token, queue="ops", next="/queues/ops")
    assert (paused.status_code, paused.headers["location"]) == (303, "/queues/ops")
    assert ops.broker.backend.conn.exists(f"{ops.broker.backend.namespace}:queues:{{ops}}:paused")
    page = client.get("/queues/ops")
    assert "Paused queue &#39;ops&#39;" in page.text  # the notice of the action
    assert _post(client, "/actions/resume", csrf=token, queue="ops").status_code == 303
    assert not ops.broker.backend.conn.exists(
        f"{ops.broker.backend.namespace}:queues:{{ops}}:paused"
    )


def test_an_action_without_the_token_or_with_another_is_refused(
    ops: ModuleType, client: TestClient
) -> None:
    [message] = states.ready(ops, 1)
    token = _token(client)
    missing = _post(client, "/actions/revoke", uuid=message.uuid)
    assert missing.status_code == 403
    assert "carries no CSRF token" in missing.text
    other = ("y" if token[0] == "x" else "x") + token[1:]  # never the token itself
    wrong = _post(client, "/actions/revoke", csrf=other, uuid=message.uuid)
    assert (wrong.status_code, "does not match" in wrong.text) == (403, True)
    client.cookies.clear()
    cookieless = _post(client, "/actions/revoke", csrf=token, uuid=message.uuid)
    assert cookieless.status_code == 403
    assert ops.broker.exists(message)  # nothing was revoked


def test_an_action_from_another_site_is_refused_even_with_the_token(
    ops: ModuleType, client: TestClient
) -> None:
    [message] = states.ready(ops, 1)
    token = _token(client)
    forged = client.post(
        "/actions/revoke",
        data={"csrf": token, "uuid": message.uuid},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "another site" in forged.text
    assert ops.broker.exists(message)


def test_next_never_leads_to_another_site(ops: ModuleType, client: TestClient) -> None:
    states.ready(ops, 1)
    token = _token(client)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        done = _post(client, "/actions/pause", csrf=token, queue="ops", next=target)
        assert done.headers["location"] == "/", target


def test_revoke_run_now_requeue_and_delete_through_the_pages(
    ops: ModuleType, client: TestClient
) -> None:
    [ready] = states.ready(ops, 1)
    [later] = states.delayed(ops, 1)
    dead = states.dead(ops, 4)
    token = _token(client)
    assert _post(client, "/actions/revoke", csrf=token, uuid=ready.uuid).status_code == 303
    assert not ops.broker.exists(ready)
    assert _post(client, "/actions/run-now", csrf=token, uuid=later.uuid).status_code == 303
    assert client.get(f"/messages/{later.uuid}").text.count('id="message-state">ready') == 1
    requeued = _post(
        client, "/actions/requeue-dead", csrf=token, only=dead[0].uuid, uuid=[dead[1].uuid]
    )
    assert requeued.status_code == 303
    assert "Requeued 1 dead letter(s)." in client.get("/").text
    selection = {"csrf": token, "uuid": [dead[1].uuid, dead[2].uuid]}
    client.post("/actions/delete-dead", data=selection)
    remaining = {"csrf": token, "all": "1", "queue": "ops"}
    client.post("/actions/requeue-dead", data=remaining)
    [stats] = [q for q in _queues(ops) if q.queue == "ops"]
    # Ready: the one run now, dead[0], then "all" of the rest: dead[3] and the revoked one.
    assert (stats.dead, stats.ready) == (0, 4)


def test_purge_refuses_an_unknown_queue_or_state(ops: ModuleType, client: TestClient) -> None:
    states.ready(ops, 2)
    token = _token(client)
    assert _post(client, "/actions/purge", csrf=token, queue="nope", state="all").status_code == 404
    assert _post(client, "/actions/purge", csrf=token, queue="ops", state="x").status_code == 400
    assert (
        _post(client, "/actions/purge", csrf=token, queue="ops", state="ready").status_code == 303
    )
    assert "Purged 2 ready message(s)" in client.get("/").text


def test_read_only_shows_no_button_and_refuses_every_action(ops: ModuleType) -> None:
    [message] = states.ready(ops, 1)
    states.dead(ops, 1)
    with TestClient(create_app(ops.broker, read_only=True)) as client:
        for path in ("/queues/ops", f"/messages/{message.uuid}", "/dead", "/scheduled"):
            page = client.get(path)
            assert page.status_code == 200
            assert '<button type="submit"' not in page.text.split("</header>")[1], path
            assert "Read-only" in page.text
        token = client.cookies.get(CSRF_COOKIE)
        refused = _post(client, "/actions/revoke", csrf=token, uuid=message.uuid)
        assert refused.status_code == 403
        assert "read-only" in refused.text
    assert ops.broker.exists(message)


def test_auth_refuses_without_credentials_and_accepts_them(ops: ModuleType) -> None:
    app = create_app(ops.broker, auth="admin:s3cret", token="t0ken")
    with TestClient(app) as client:
        for path in ("/", "/static/dashboard.js", "/workers"):
            refused = client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic")
        assert client.get("/", auth=("admin", "wrong")).status_code == 401
        assert client.get("/", auth=("admin", "s3cret")).status_code == 200
        bearer = client.get("/", headers={"authorization": "Bearer t0ken"})
        assert bearer.status_code == 200
        assert client.get("/", headers={"authorization": "Bearer nope"}).status_code == 401
        post = client.post("/actions/pause", data={"queue": "ops"})
        assert post.status_code == 401


def test_every_response_forbids_foreign_scripts_and_frames(client: TestClient) -> None:
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert client.get("/static/dashboard.css").headers["x-content-type-options"] == "nosniff"


def _queues(ops: ModuleType) -> list:
    from alsek.admin import Admin

    return Admin(ops.broker).queues()


def test_a_live_refresh_leaves_the_notice_to_the_page_load(
    ops: ModuleType, client: TestClient
) -> None:
    """The page script's refresh can race the redirect after an action: it must not take the
    notice that the redirected page is about to show."""
    states.ready(ops, 1)
    token = _token(client, "/queues/ops")
    assert _post(client, "/actions/pause", csrf=token, queue="ops").status_code == 303
    refresh = client.get("/queues/ops", headers={"X-Alsek-Live": "1"})
    assert "Paused queue" not in refresh.text
    assert "Paused queue &#39;ops&#39;" in client.get("/queues/ops").text
    assert "Paused queue" not in client.get("/queues/ops").text  # shown once
