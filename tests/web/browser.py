"""A real browser for the dashboard tests: Debian's headless Chromium driven by Selenium, and
the dashboard served by uvicorn on a free loopback port.

A missing browser fails the tests, unless ``ALSEK_SKIP_BROWSER=1`` says to skip them (then the
reason is printed). Screenshots are written only when ``ALSEK_SCREENSHOTS`` names a folder
(``make screenshots`` points it at ``docs/img``).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from alsek.testing.processes import free_port
from tests.polling import eventually

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Without these, Chromium on a machine with no network stalls on its own background calls.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


def start_browser() -> Any:
    """A headless Chromium with a fresh profile, or a skip/failure saying why there is none."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        reason = f"{' and '.join(missing)} missing: apt-get install -y chromium chromium-driver"
        if os.environ.get("ALSEK_SKIP_BROWSER") == "1":
            pytest.skip(f"browser tests skipped (ALSEK_SKIP_BROWSER=1): {reason}")
        pytest.fail(f"{reason} (or set ALSEK_SKIP_BROWSER=1 to skip the browser tests)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='alsek-chromium-')}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; its base URL while the block runs."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``check`` until it is truthy; a page changing under it (stale or missing
    elements) counts as "not yet"."""
    from selenium.common.exceptions import WebDriverException

    return eventually(check, timeout, what, interval=0.05, not_yet=(WebDriverException,))


def screenshot(driver: Any, name: str) -> None:
    """Save the page as ``<ALSEK_SCREENSHOTS>/dashboard-<name>.png`` when asked to."""
    folder = os.environ.get("ALSEK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"dashboard-{name}.png"))
