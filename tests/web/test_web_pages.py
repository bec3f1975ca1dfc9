"""Every page over plain HTTP against a real Redis: what it shows, and that what users typed
(task arguments, uuids, queue names) is rendered as text, never as markup."""

from __future__ import annotations

import re
from types import ModuleType

import states
from starlette.testclient import TestClient

from alsek import task
from alsek.core.broker import ClaimSource
from alsek.web import create_app

SCRIPT = "<script>alert('x')</script>"


def test_the_overview_shows_each_queue_its_depths_and_the_dlq_total(
    ops: ModuleType, client: TestClient
) -> None:
    states.ready(ops, 3)
    states.delayed(ops, 2)
    states.dead(ops, 1)
    page = client.get("/")
    assert page.status_code == 200, page.text
    row = re.search(r'<tr data-queue="ops">(.*?)</tr>', page.text, re.S)
    assert row is not None, page.text
    cells = re.findall(r'<td class="num[^"]*">(\d+)</td>', row.group(1))
    assert cells == ["3", "2", "0", "1"]  # ready, delayed, running, dead
    assert re.search(r'id="dead-total"><a [^>]*>1</a>', page.text)
    # The dead letter's failure is in the throughput chart (Admin.throughput) and its legend.
    assert re.search(r"failed, 1 dead-lettered</title>", page.text)
    assert re.search(r"</span> 1 failed\s+\(1 dead-lettered\)", page.text)


def test_a_paused_queue_says_so(ops: ModuleType, client: TestClient) -> None:
    states.ready(ops, 1)
    ops.broker.backend.conn.set(f"{ops.broker.backend.namespace}:queues:{{ops}}:paused", "1")
    assert '<span class="badge paused">paused</span>' in client.get("/").text
    page = client.get("/queues/ops")
    assert 'id="queue-state">paused' in page.text
    assert ">Resume</button>" in page.text


def test_the_queue_page_lists_messages_by_state_and_task_paged(
    ops: ModuleType, client: TestClient
) -> None:
    ready = states.ready(ops, 60)
    [late] = states.delayed(ops, 1)
    first = client.get("/queues/ops")
    assert first.status_code == 200
    shown = re.findall(r'class="uuid" href="/messages/([^"]+)"', first.text)
    assert shown == [m.uuid for m in ready[:50]]
    assert "page 1 of 2" in first.text
    second = client.get("/queues/ops", params={"page": 2})
    assert re.findall(r'class="uuid" href="/messages/([^"]+)"', second.text) == [
        m.uuid for m in ready[50:]
    ]
    delayed = client.get("/queues/ops", params={"state": "delayed", "task": "add"})
    assert re.findall(r'class="uuid" href="/messages/([^"]+)"', delayed.text) == [late.uuid]
    assert ">Run now</button>" in delayed.text
    none = client.get("/queues/ops", params={"state": "ready", "task": "boom"})
    assert "No message." in none.text


def test_bad_query_values_get_a_one_line_error(client: TestClient, ops: ModuleType) -> None:
    states.ready(ops, 1)
    unknown = client.get("/queues/nope")
    assert unknown.status_code == 404
    assert "Unknown queue &#39;nope&#39; (known queues: ops)" in unknown.text
    assert client.get("/queues/ops", params={"state": "lost"}).status_code == 400
    assert client.get("/queues/ops", params={"page": "0"}).status_code == 400
    assert client.get("/", params={"window": "3y"}).status_code == 400


def test_the_message_page_shows_its_timeline_arguments_and_result(
    ops: ModuleType, client: TestClient
) -> None:
    [message] = states.ready(ops, 1)
    waiting = client.get(f"/messages/{message.uuid}").text
    assert re.search(r'<pre class="args" id="args">\[\s*0,\s*1\s*\]</pre>', waiting)
    claimed = ops.broker.claim(
        [ClaimSource(ops.QUEUE)], 1, owner_id="o", status=ops.tracker.claim_status()
    ).messages[0]
    ops.broker.ack(claimed, effects=ops.add.success_effects(claimed, 42))
    page = client.get(f"/messages/{message.uuid}")
    assert page.status_code == 200
    timeline = re.findall(r'<span class="status">(\w+)</span>', page.text)
    assert timeline == ["SUBMITTED", "RUNNING", "SUCCEEDED"]
    assert '<pre class="result" id="result">42</pre>' in page.text


def test_a_dead_message_shows_its_error_and_retry(ops: ModuleType, client: TestClient) -> None:
    [failed] = states.dead(ops, 1)
    page = client.get(f"/messages/{failed.uuid}")
    assert "<strong>ValueError</strong>: boom on purpose" in page.text
    assert '<pre class="traceback">Traceback: ...</pre>' in page.text
    assert ">Retry</button>" in page.text and ">Delete</button>" in page.text


def test_search_goes_to_the_message_or_says_it_is_unknown(
    ops: ModuleType, client: TestClient
) -> None:
    [message] = states.ready(ops, 1)
    found = client.get("/search", params={"uuid": f"  {message.uuid} "}, follow_redirects=False)
    assert (found.status_code, found.headers["location"]) == (303, f"/messages/{message.uuid}")
    missing = client.get("/search", params={"uuid": SCRIPT})
    assert missing.status_code == 404
    assert SCRIPT not in missing.text
    assert "&lt;script&gt;" in missing.text


def test_task_arguments_are_rendered_as_text(ops: ModuleType, client: TestClient) -> None:
    message = ops.side.generate(args=(SCRIPT,))
    for path in (f"/messages/{message.uuid}", "/queues/side"):
        page = client.get(path)
        assert page.status_code == 200
        assert "<script>alert" not in page.text
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        in client.get(f"/messages/{message.uuid}").text
    )


def test_the_dead_letter_page_groups_by_queue_and_task(ops: ModuleType, client: TestClient) -> None:
    booms = states.dead(ops, 2, "boom")
    states.dead(ops, 1, "sleepy")
    page = client.get("/dead")
    assert re.search(
        r'href="/dead\?queue=ops&amp;task=boom">boom</a></td><td class="num">2', page.text
    )
    filtered = client.get("/dead", params={"queue": "ops", "task": "boom"})
    shown = re.findall(r'class="uuid" href="/messages/([^"]+)"', filtered.text)
    assert shown == [m.uuid for m in booms]


def test_the_scheduled_page_lists_delayed_messages_soonest_first(
    ops: ModuleType, client: TestClient
) -> None:
    later = ops.add.generate(args=(1, 1), delay=900_000)
    sooner = ops.side.generate(args=(2,), delay=300_000)
    page = client.get("/scheduled")
    assert re.findall(r'class="uuid" href="/messages/([^"]+)"', page.text) == [
        sooner.uuid,
        later.uuid,
    ]
    assert "2 message(s) waiting" in page.text


def test_the_workers_page_lists_live_pools(ops: ModuleType, client: TestClient) -> None:
    assert "No live worker" in client.get("/workers").text


def test_the_triggers_page_lists_the_package_trigger_tasks(ops: ModuleType) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    @task(ops.broker, queue="ticks", trigger=IntervalTrigger(minutes=5))
    def tick() -> None:
        """Fires every five minutes."""

    with TestClient(create_app(ops.broker, tasks=[ops.add, tick])) as client:
        page = client.get("/triggers")
    assert re.search(r"<td>tick</td>.*interval\[0:05:00\]", page.text, re.S), page.text
    with TestClient(create_app(ops.broker)) as bare:
        assert "alsek dashboard myapp" in bare.get("/triggers").text


def test_it_mounts_inside_a_starlette_app_with_its_links_under_the_mount(
    ops: ModuleType,
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    states.ready(ops, 1)
    outer = Starlette(routes=[Mount("/ops/alsek", create_app(ops.broker))])
    with TestClient(outer) as client:
        page = client.get("/ops/alsek/")
        assert page.status_code == 200
        assert 'href="/ops/alsek/queues/ops"' in page.text
        assert 'src="/ops/alsek/static/dashboard.js"' in page.text
        assert client.get("/ops/alsek/static/dashboard.js").status_code == 200
        assert client.get("/ops/alsek/queues/ops").status_code == 200


def test_an_async_broker_is_read_on_the_event_loop(
    ops: ModuleType, redis_url: str, namespace: str
) -> None:
    from alsek.core.broker import AsyncBroker
    from alsek.storage.backends.redis.asyncio import AsyncRedisBackend

    [message] = states.ready(ops, 1)
    broker = AsyncBroker(AsyncRedisBackend(redis_url, namespace=namespace))
    with TestClient(create_app(broker)) as client:
        assert 'href="/queues/ops"' in client.get("/").text
        page = client.get(f"/messages/{message.uuid}")
        assert 'id="message-state">ready' in page.text


def test_an_unreachable_redis_is_a_503_page_naming_it(free_tcp_port: int) -> None:
    from alsek.core.broker import Broker
    from alsek.storage.backends.redis.sync import RedisBackend

    broker = Broker(RedisBackend(f"redis://127.0.0.1:{free_tcp_port}/0"))
    with TestClient(create_app(broker)) as client:
        page = client.get("/")
    assert page.status_code == 503
    assert "Redis did not answer (ConnectionError" in page.text
