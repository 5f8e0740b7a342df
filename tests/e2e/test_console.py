"""The web console in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

One router process; each test logs in afresh. Screenshots go to ``$LOGROUTER_TEST_ARTIFACTS``
(default ``test-artifacts/``) under ``console/``. Without a Chromium on the machine these
tests are skipped, unless ``LOGROUTER_EXPECT_CHROMIUM=1`` (CI installs it) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.procs import AUTH_KEY, RouterProcess, free_port

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("LOGROUTER_EXPECT_CHROMIUM") == "1":
        raise RuntimeError("LOGROUTER_EXPECT_CHROMIUM=1 but no chromium on the PATH")
    pytest.skip("no chromium on this machine (apt-get install chromium)", allow_module_level=True)

ARTIFACTS = Path(os.environ.get("LOGROUTER_TEST_ARTIFACTS", "test-artifacts")) / "console"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    proc = RouterProcess(tmp_path_factory.mktemp("console"),
                         env={"LOGROUTER_DRAIN_BACKOFF_INITIAL": "0.2", "LOGROUTER_DRAIN_BACKOFF_MAX": "0.5",
                              "LOGROUTER_SYSLOG_DRAIN_LINGER": "0",
                              "LOGROUTER_SSE_SHUTDOWN_RETRY_MS": "300"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Watched:
    """A page with what it did recorded: every request, console errors, page errors."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.origin = origin

    def check_clean(self, *expected: int | str) -> None:
        """No request left the router; no console error but the browser's note of the
        API answering one of the ``expected`` statuses, or of an expected network error
        (what the test provoked)."""
        strays = [u for u in self.requests if not u.startswith(self.origin + "/")]
        assert not strays, f"requests left the router: {strays}"
        notes = tuple(f"status of {e} " if isinstance(e, int) else e for e in expected)
        errors = [e for e in self.errors if not (notes and any(n in e for n in notes))]
        assert not errors, errors

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.fixture
def watched(browser: Any, router: RouterProcess) -> Iterator[Watched]:
    w = Watched(browser, router.api_url)
    yield w
    w.context.close()


def login(w: Watched, key: str = AUTH_KEY) -> None:
    w.page.goto(w.origin + "/console/")
    w.page.get_by_label("API key").fill(key)
    w.page.get_by_role("button", name="Sign in").click()


def send_syslog(router: RouterProcess, token: str, procid: str, msg: str) -> None:
    ts = datetime.now(UTC).isoformat()
    frame = f"<190>1 {ts} host {token} {procid} - - {msg}".encode()
    with socket.create_connection(("127.0.0.1", router.ports["syslog"])) as sock:
        sock.sendall(b"%d %s" % (len(frame), frame))


def make_app(router: RouterProcess, name: str) -> tuple[str, str]:
    app = router.api("POST", "/apps", {"name": name})
    channel = router.api("GET", f"/v3/channels/{app['channel_id']}")
    return app["channel_id"], channel["tokens"]["app"]


def test_a_wrong_key_shows_nothing(watched: Watched, router: RouterProcess) -> None:
    make_app(router, "secret-app")
    login(watched, "not-the-key")
    page = watched.page
    sync_api.expect(page.get_by_role("alert")).to_contain_text("Wrong key")
    assert page.locator("#apps-view").is_hidden() and page.locator("#app-view").is_hidden()
    assert "secret-app" not in page.content()
    watched.shot("wrong-key")
    watched.check_clean(401)


def test_log_in_open_an_app_see_history_and_live_lines_filter_by_dyno(
        watched: Watched, router: RouterProcess) -> None:
    _, token = make_app(router, "shop")
    router.post_lines(token, [("web.1", datetime.now(UTC).isoformat(), "history line one")])
    login(watched)
    page = watched.page
    sync_api.expect(page.get_by_role("link", name="shop")).to_be_visible()
    watched.shot("apps")
    page.get_by_role("link", name="shop").click()
    log = page.locator("#log")
    sync_api.expect(log).to_contain_text("history line one")
    sync_api.expect(page.locator("#stream-state")).to_have_text("live")
    sent = time.monotonic()
    send_syslog(router, token, "web.2", "live over syslog")
    sync_api.expect(log).to_contain_text("live over syslog", timeout=1000)
    assert time.monotonic() - sent < 1.5
    send_syslog(router, token, "worker.1", "from the worker")
    sync_api.expect(log).to_contain_text("from the worker")
    page.get_by_label("Dyno").fill("web")
    sync_api.expect(log).not_to_contain_text("from the worker")
    sync_api.expect(log).to_contain_text("live over syslog")
    page.get_by_label("Dyno").fill("")
    page.get_by_label("Search").fill("syslog")
    sync_api.expect(log.locator("mark")).to_have_text(["syslog"])
    watched.shot("app")
    watched.check_clean()


def test_hostile_lines_are_shown_as_text_and_run_nothing(watched: Watched, router: RouterProcess) -> None:
    _, token = make_app(router, "hostile")
    login(watched)
    page = watched.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.get_by_role("link", name="hostile").click()
    sync_api.expect(page.locator("#stream-state")).to_have_text("live")
    script = "<script>window.__pwned = 1; alert(1)</script>"
    img = '<img src=x onerror="window.__pwned = 2; alert(2)">'
    send_syslog(router, token, "web.1", script)
    send_syslog(router, token, "web.1", img)
    log = page.locator("#log")
    sync_api.expect(log).to_contain_text(script)
    sync_api.expect(log).to_contain_text(img)
    assert page.locator("#log script, #log img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert not dialogs
    watched.check_clean()


class Receiver:
    """A syslog receiver on a fixed port that can go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lines = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conns: list[socket.socket] = []

    def up(self) -> None:
        self._stop.clear()
        self._server = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        self._server.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.1)
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.lines += data.count(b"<")

    def down(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._server.close()
        for conn in self._conns:
            conn.close()
        self._conns.clear()


def test_drains_are_added_shown_live_and_removed(watched: Watched, router: RouterProcess) -> None:
    _, token = make_app(router, "drained")
    receiver = Receiver()
    receiver.up()
    login(watched)
    page = watched.page
    page.get_by_role("link", name="drained").click()
    page.get_by_label("Add a drain").fill("ftp://nope")
    page.get_by_role("button", name="Add").click()
    sync_api.expect(page.locator("#drain-error")).to_be_visible()  # the API's reason, inline
    page.get_by_label("Add a drain").fill(f"syslog://127.0.0.1:{receiver.port}")
    page.get_by_role("button", name="Add").click()
    drain = page.locator("#drains-list li").first
    sync_api.expect(drain).to_contain_text(f"syslog://127.0.0.1:{receiver.port}")

    def state_becomes(text: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            send_syslog(router, token, "web.1", "to the drain")
            if text in (drain.locator("dd").first.text_content() or ""):
                return
            page.wait_for_timeout(300)
        raise AssertionError(f"drain state never became {text!r}: {drain.text_content()}")

    try:
        state_becomes("connected")
        receiver.down()
        state_becomes("failing")
        watched.shot("drain-down")
        receiver.up()
        state_becomes("connected")
    finally:
        receiver.down()
    page.get_by_role("button", name=f"Remove drain syslog://127.0.0.1:{receiver.port}").click()
    sync_api.expect(page.locator("#drains-list")).to_contain_text("No drains.")
    watched.check_clean(400)


def test_create_and_delete_an_app(watched: Watched, router: RouterProcess) -> None:
    login(watched)
    page = watched.page
    page.on("dialog", lambda d: d.accept())
    page.get_by_label("New app").fill("made-in-the-browser")
    page.get_by_role("button", name="Create").click()
    sync_api.expect(page.locator("#app-title")).to_have_text("made-in-the-browser")
    page.get_by_role("button", name="Delete app").click()
    sync_api.expect(page.locator("#apps-view")).to_be_visible()
    sync_api.expect(page.get_by_role("link", name="made-in-the-browser")).to_have_count(0)
    assert all(a["name"] != "made-in-the-browser" for a in router.api("GET", "/apps"))
    page.get_by_label("New app").fill("bad name!")
    page.get_by_role("button", name="Create").click()
    sync_api.expect(page.locator("#create-error")).to_be_visible()
    # narrow screens: the page still lays out without horizontal scrolling of the body
    page.set_viewport_size({"width": 380, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.get_by_role("button", name="Log out").click()
    sync_api.expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    watched.check_clean(400, 422)


def test_the_tail_resumes_after_a_restart_without_repeats_and_pauses(
        watched: Watched, router: RouterProcess) -> None:
    _, token = make_app(router, "resumed")
    router.post_lines(token, [("web.1", datetime.now(UTC).isoformat(), f"before {i}") for i in range(3)])
    login(watched)
    page = watched.page
    page.get_by_role("link", name="resumed").click()
    log = page.locator("#log")
    sync_api.expect(log).to_contain_text("before 2")
    router.stop()  # the stream ends; the page reconnects with Last-Event-ID
    router.start()
    send_syslog(router, token, "web.1", "after the restart")
    sync_api.expect(log).to_contain_text("after the restart", timeout=10_000)
    text = log.text_content() or ""
    assert all(text.count(f"before {i}") == 1 for i in range(3)), text
    page.get_by_role("button", name="Pause").click()
    send_syslog(router, token, "web.1", "while paused")
    page.wait_for_timeout(500)
    sync_api.expect(log).not_to_contain_text("while paused")
    page.get_by_role("button", name="Resume").click()
    sync_api.expect(log).to_contain_text("while paused")
    watched.check_clean("net::ERR_CONNECTION_REFUSED")  # while the router restarted


def test_the_page_keeps_at_most_5000_lines(watched: Watched, router: RouterProcess) -> None:
    _, token = make_app(router, "busy")
    login(watched)
    page = watched.page
    page.get_by_role("link", name="busy").click()
    sync_api.expect(page.locator("#stream-state")).to_have_text("live")
    now = datetime.now(UTC).isoformat()
    for start in range(0, 6000, 1000):
        router.post_lines(token, [("web.1", now, f"busy {start + i}") for i in range(1000)])
    log = page.locator("#log")
    sync_api.expect(log).to_contain_text("busy 5999")
    assert page.locator("#log .line").count() == 5000
    assert "busy 999\n" not in (log.text_content() or "")
    watched.check_clean()


def test_more_apps_than_shown_are_filtered_by_the_node(watched: Watched,
                                                       router: RouterProcess) -> None:
    """A node may have tens of thousands of apps: the console asks the node for the apps it
    shows (500 by name, filtered by the node), never for every app and drain (last in this
    module: its apps sort after the other tests' ones)."""
    for i in range(510):
        router.api("POST", "/apps", {"name": f"zz-many-{i:04d}"})
    login(watched)
    page = watched.page
    rows = page.locator("#apps-table tbody tr")
    sync_api.expect(page.locator("#apps-more")).to_contain_text("more apps: narrow the filter")
    sync_api.expect(rows).to_have_count(500)
    page.get_by_label("Filter").fill("ZZ-MANY-0509")
    sync_api.expect(rows).to_have_count(1)
    sync_api.expect(page.get_by_role("link", name="zz-many-0509")).to_be_visible()
    sync_api.expect(page.locator("#apps-more")).to_have_text("")
    page.get_by_role("link", name="zz-many-0509").click()
    sync_api.expect(page.locator("#app-title")).to_have_text("zz-many-0509")
    asked = [u for u in watched.requests if "/v3/stats" in u]
    assert asked and all("?" in u for u in asked), asked
    watched.shot("many-apps")
    watched.check_clean()
