"""Issue 13: the dashboard in a real headless browser (Debian's chromium, driven by selenium).

Under load the page must list the hosts and its throughput figure must change; a screenshot is
saved under the test's tmp dir and, when SWARM_ARTIFACTS is set, copied there. With auth on,
the page asks for the admin token and shows the swarm once given it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from swarm.bench.screenshot import SleepLoad, headless_chromium
from swarm.client import Client
from swarm.common import pki
from swarm.deploy.inproc import InProcessSwarm

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver",
)

if CHROMIUM is not None and DRIVER is not None:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

PAGE_WAIT_S = 30.0


def wait_until(driver: webdriver.Chrome, condition: Any, poll_frequency: float = 0.5) -> Any:
    """Poll `condition` until it holds (PAGE_WAIT_S at most). The page redraws its tables
    every poll, so an element read between two WebDriver calls may be gone by the second:
    that read is retried, not a failure."""
    return WebDriverWait(
        driver,
        PAGE_WAIT_S,
        poll_frequency=poll_frequency,
        ignored_exceptions=(StaleElementReferenceException,),
    ).until(condition)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = headless_chromium(1400, 1400)
    try:
        yield driver
    finally:
        driver.quit()


def keep_screenshot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    assert driver.save_screenshot(str(shot))
    artifacts = os.environ.get("SWARM_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / name)
    return shot


def host_ids(driver: webdriver.Chrome) -> list[str]:
    """The host rows the page shows, read in one script: no row can be redrawn midway."""
    ids = driver.execute_script(
        "return Array.from(document.querySelectorAll('#hosts tbody tr'), r => r.dataset.host)"
    )
    return sorted(str(i) for i in ids)


def watch_throughput(driver: webdriver.Chrome) -> set[str]:
    """The throughput figures the page shows, until it has shown two different nonzero ones."""
    seen: set[str] = set()

    def changed(d: webdriver.Chrome) -> bool:
        seen.add(d.find_element(By.ID, "throughput").text)
        return len(seen - {"-", "0.0"}) >= 2

    wait_until(driver, changed, poll_frequency=0.2)
    return seen


def wait_redraws(driver: webdriver.Chrome, n: int) -> None:
    """Until the page has redrawn n times: its uptime figure moves with each poll."""
    seen = {driver.find_element(By.ID, "uptime").text}

    def moved(d: webdriver.Chrome) -> bool:
        seen.add(d.find_element(By.ID, "uptime").text)
        return len(seen) > n

    wait_until(driver, moved, poll_frequency=0.1)


def test_dashboard_shows_hosts_and_moving_throughput(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with (
        InProcessSwarm(hosts=2, agents_per_host=50, metrics_port=0) as swarm,
        SleepLoad(swarm.address, 400, 2),
    ):
        browser.get(swarm.metrics_url)
        wait_until(browser, lambda d: host_ids(d) == ["h0", "h1"])
        seen = watch_throughput(browser)
        assert any(float(v) > 0 for v in seen if v != "-")
        assert "active" in browser.find_element(By.ID, "hosts").text
        assert browser.find_elements(By.CSS_SELECTOR, "#chart-throughput polyline")
        # Task lookup by id, through the form.
        with Client(swarm.address) as client:
            client.submit("echo", b"hi", id="seen-in-browser").result(timeout=30)
        browser.find_element(By.ID, "task-id").send_keys("seen-in-browser")
        browser.find_element(By.CSS_SELECTOR, "#lookup button").click()
        wait_until(browser, lambda d: '"succeeded"' in d.find_element(By.ID, "task-result").text)
        keep_screenshot(browser, tmp_path, "dashboard.png")


def test_dashboard_asks_for_the_admin_token(browser: webdriver.Chrome, tmp_path: Path) -> None:
    home = tmp_path / "state"
    pki.init_state(home)
    admin = (home / pki.ADMIN_TOKEN).read_text().strip()
    with InProcessSwarm.secured(home, hosts=1, agents_per_host=4, metrics_port=0) as swarm:
        browser.get(swarm.metrics_url)
        login = browser.find_element(By.ID, "login")
        wait_until(browser, lambda d: login.is_displayed())
        assert not browser.find_element(By.ID, "main").is_displayed()
        browser.find_element(By.ID, "token").send_keys(admin)
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        wait_until(browser, lambda d: host_ids(d) == ["h0"])
        assert not login.is_displayed()
        keep_screenshot(browser, tmp_path, "dashboard-login.png")


def test_an_opened_traceback_stays_open_across_redraws(browser: webdriver.Chrome) -> None:
    with InProcessSwarm(hosts=1, agents_per_host=4, metrics_port=0) as swarm:
        with Client(swarm.address) as client:
            fut = client.submit("fail", b"read my traceback", id="opened", max_retries=0)
            client.gather([fut], return_exceptions=True)
        browser.get(swarm.metrics_url)
        opened = '#failures details[data-key="default/opened"]'
        wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, opened))
        browser.find_element(By.CSS_SELECTOR, "#failures summary").click()
        wait_redraws(browser, 2)
        details = browser.find_element(By.CSS_SELECTOR, "#failures details")
        assert details.get_attribute("open") is not None
        assert "RuntimeError: read my traceback" in details.find_element(By.TAG_NAME, "pre").text
