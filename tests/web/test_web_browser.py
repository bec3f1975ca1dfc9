"""The dashboard in a real browser (headless Chromium): every page against a live pool, numbers
that change as messages flow, search, pause and resume, the dead-letter queue, and what
read-only mode and authentication refuse."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import states
from apscheduler.triggers.interval import IntervalTrigger
from browser import screenshot, served, start_browser, wait_for
from opsfixtures import Pools
from selenium.webdriver.common.by import By

from alsek import task
from alsek.admin import Admin
from alsek.web import create_app

pytestmark = pytest.mark.slow

REFRESH_MS = 250
#: Messages of each kind sent while the pages are shown, and how long each slow one runs: the
#: backlog lasts about TRAFFIC * TRAFFIC_RUN_SECONDS / 2 slots = 16 s.
TRAFFIC = 80
TRAFFIC_RUN_SECONDS = 0.4


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """One browser for the module (each test has its own namespace, server and pages)."""
    browser = start_browser()
    yield browser
    browser.quit()


@pytest.fixture
def dashboard(ops: ModuleType) -> Iterator[str]:
    """The dashboard of ``opswork``'s broker, with a trigger task, refreshing often."""

    @task(ops.broker, queue="ticks", trigger=IntervalTrigger(minutes=5))
    def heartbeat() -> None:
        """Fires every five minutes."""

    tasks = [ops.add, ops.sleepy, ops.boom, ops.side, heartbeat]
    with served(create_app(ops.broker, refresh_ms=REFRESH_MS, tasks=tasks)) as base:
        yield base


def _text(driver: Any, element_id: str) -> str:
    """The element's text, read again if the page's live refresh replaced the element between
    finding it and reading it."""
    return str(wait_for(lambda: driver.find_element(By.ID, element_id).text or " ")).strip()


def _button(driver: Any, label: str) -> Any:
    return driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']")


def _click(driver: Any, label: str) -> None:
    """Click button ``label``, found again if a refresh replaced it in between."""
    wait_for(lambda: _button(driver, label).click() or True, what=f"a click on {label!r}")


def _charted(driver: Any) -> bool:
    """Whether the page's chart shows successes and run times."""
    chart = str(driver.find_element(By.CSS_SELECTOR, ".chart-box").text)
    return re.search(r"\b0 succeeded", chart) is None and "No run ended" not in chart


def _notice(driver: Any) -> str:
    return str(driver.find_element(By.CLASS_NAME, "notice").text)


def test_every_page_follows_the_messages_a_live_pool_runs(
    driver: Any, dashboard: str, ops: ModuleType, pools: Pools
) -> None:
    done = [ops.add.generate(args=(i, 1)) for i in range(5)]
    states.dead(ops, 1)
    ops.side.generate(args=(3,), delay=600_000)
    driver.get(dashboard + "/")
    wait_for(lambda: _text(driver, "ready-total") == "5", what="5 ready on the overview")
    assert _text(driver, "workers-alive") == "0"
    pools.start("thread")
    # No reload: the page's script refreshes its live part as the pool runs the messages.
    wait_for(lambda: _text(driver, "workers-alive") == "1", what="the pool on the overview")
    wait_for(lambda: _text(driver, "ready-total") == "0", what="the backlog drained")
    assert _text(driver, "dead-total") == "1"
    assert driver.find_elements(By.CSS_SELECTOR, ".chart-box")
    # Traffic while the pages are looked at (and shot): a backlog of slow runs keeps both
    # slots busy, failures keep coming, more runs land in the chart.
    for number in range(TRAFFIC):
        ops.add.generate(args=(number, number))
        ops.sleepy.generate(args=(TRAFFIC_RUN_SECONDS,))
        if number % 10 == 0:
            ops.boom.generate()
            ops.side.generate(args=(number,), delay=300_000 + number * 1_000)
    wait_for(lambda: _text(driver, "running-total") == "2", what="both slots busy, live")
    wait_for(lambda: int(_text(driver, "dead-total")) > 1, what="new dead letters, live")
    assert int(_text(driver, "ready-total")) > 0
    # The chart is read again every few seconds: wait for the runs that ended to show.
    wait_for(lambda: _charted(driver), what="the ended runs on the chart")
    screenshot(driver, "overview")
    pages = {
        "queue": ("/queues/ops", "Queue ops"),
        "workers": ("/workers", "Workers"),
        "dead": ("/dead", "Dead letters"),
        "scheduled": ("/scheduled", "Scheduled"),
        "triggers": ("/triggers", "Triggers"),
        "message": (f"/messages/{done[0].uuid}", f"Message {done[0].uuid}"),
    }
    for name, (path, heading) in pages.items():
        driver.get(dashboard + path)
        assert driver.find_element(By.TAG_NAME, "h1").text == heading, name
        assert not driver.find_elements(By.CLASS_NAME, "problem"), driver.page_source
        screenshot(driver, name)
    driver.get(dashboard + "/workers")
    assert "thread" in driver.find_element(By.ID, "workers").text
    driver.get(dashboard + "/triggers")
    assert "heartbeat" in driver.find_element(By.ID, "triggers").text
    driver.get(dashboard + f"/messages/{done[0].uuid}")
    wait_for(lambda: "SUCCEEDED" in _text(driver, "timeline"), what="the timeline's success")
    assert _text(driver, "result") == "1"


def test_search_finds_a_message_from_any_page(driver: Any, dashboard: str, ops: ModuleType) -> None:
    message = ops.add.generate(args=(2, 2))
    driver.get(dashboard + "/workers")
    box = driver.find_element(By.NAME, "uuid")
    box.send_keys(message.uuid)
    box.submit()
    wait_for(lambda: message.uuid in driver.find_element(By.TAG_NAME, "h1").text, what="found")
    assert _text(driver, "message-state") == "ready"
    assert _text(driver, "args").split() == ["[", "2,", "2", "]"]
    box = driver.find_element(By.NAME, "uuid")
    box.send_keys("no-such-uuid")
    box.submit()
    wait_for(lambda: "No message with uuid" in driver.page_source, what="the unknown uuid")


def test_pause_and_resume_a_queue(
    driver: Any, dashboard: str, ops: ModuleType, pools: Pools
) -> None:
    states.ready(ops, 1)
    driver.get(dashboard + "/queues/ops")
    _click(driver, "Pause")
    wait_for(lambda: "Paused queue 'ops'" in _notice(driver), what="the pause notice")
    assert _text(driver, "queue-state") == "paused"
    pools.start("thread")
    held = ops.add.generate(args=(5, 5))
    wait_for(lambda: len(Admin(ops.broker).workers()) == 1, what="the pool registered")
    assert ops.tracker.get(held).value.name == "SUBMITTED"
    _click(driver, "Resume")
    wait_for(lambda: "Resumed queue 'ops'" in _notice(driver), what="the resume notice")
    wait_for(lambda: _text(driver, "count-ready") == "0", what="the queue drained after resume")
    assert ops.store.get(held, timeout=30_000) == 10


def test_requeue_and_delete_from_the_dead_letter_queue(
    driver: Any, dashboard: str, ops: ModuleType
) -> None:
    letters = states.dead(ops, 4)
    driver.get(dashboard + "/dead")
    driver.find_element(By.CSS_SELECTOR, f"input[value='{letters[0].uuid}']").click()
    _button(driver, "Requeue selected").click()
    wait_for(lambda: _notice(driver) == "Requeued 1 dead letter(s).", what="requeued one")
    row = driver.find_element(By.XPATH, f"//tr[.//a[text()='{letters[1].uuid}']]")
    row.find_element(By.XPATH, ".//button[text()='Delete']").click()
    driver.switch_to.alert.accept()
    wait_for(lambda: _notice(driver) == "Deleted 1 dead letter(s).", what="deleted one")
    _button(driver, "Requeue all (2)").click()
    driver.switch_to.alert.accept()
    wait_for(lambda: _notice(driver) == "Requeued 2 dead letter(s).", what="requeued the rest")
    [stats] = Admin(ops.broker).queues()
    assert (stats.ready, stats.dead) == (3, 0)


def test_the_dead_letter_page_follows_new_letters_but_not_under_a_ticked_box(
    driver: Any, dashboard: str, ops: ModuleType
) -> None:
    [first] = states.dead(ops, 1)
    driver.get(dashboard + "/dead")
    assert _text(driver, "dead-heading") == "Every queue: 1 dead letter(s)"
    [second] = states.dead(ops, 1)
    # No reload: the heading and the list follow the queue.
    wait_for(
        lambda: _text(driver, "dead-heading") == "Every queue: 2 dead letter(s)",
        what="the heading's new count",
    )
    wait_for(lambda: second.uuid in _text(driver, "dead-letters"), what="the new letter listed")
    assert first.uuid in _text(driver, "dead-letters")
    assert _button(driver, "Requeue all (2)")
    # A ticked box: the list (and the ticks) stay as they are; the heading still follows.
    driver.find_element(By.CSS_SELECTOR, f"input[value='{first.uuid}']").click()
    driver.find_element(By.TAG_NAME, "h1").click()  # the box loses the focus, keeps its tick
    [third] = states.dead(ops, 1)
    wait_for(
        lambda: _text(driver, "dead-heading") == "Every queue: 3 dead letter(s)",
        what="the heading's count under a ticked box",
    )
    assert third.uuid not in _text(driver, "dead-letters")
    assert driver.find_element(By.CSS_SELECTOR, f"input[value='{first.uuid}']").is_selected()


def test_read_only_shows_no_action_and_auth_refuses_strangers(driver: Any, ops: ModuleType) -> None:
    states.dead(ops, 1)
    with served(create_app(ops.broker, read_only=True, refresh_ms=REFRESH_MS)) as base:
        driver.get(base + "/queues/ops")
        assert "Read-only" in driver.find_element(By.CLASS_NAME, "banner").text
        assert not driver.find_elements(By.XPATH, "//main//button")
        driver.get(base + "/dead")
        assert not driver.find_elements(By.CSS_SELECTOR, "input[type=checkbox]")
    app = create_app(ops.broker, auth="admin:s3cret", refresh_ms=REFRESH_MS)
    with served(app) as base:
        driver.get(base + "/")
        # Refused: the browser asks for credentials (headless: an empty page), shows nothing.
        assert not driver.find_elements(By.TAG_NAME, "h1")
        assert "ops" not in driver.page_source
        driver.get(base.replace("http://", "http://admin:s3cret@") + "/")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
        ops.add.generate(args=(1, 1))
        # The refresh script's requests carry the credentials the browser was given.
        wait_for(lambda: _text(driver, "ready-total") == "1", what="a refresh with credentials")
