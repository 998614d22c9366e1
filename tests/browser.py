"""Open a page in real headless Chromium and report what a reader's browser would: console errors, uncaught
exceptions, failed loads, whether every image decoded, and a screenshot.

Talks the Chrome DevTools protocol over a websocket to a Chromium this module starts (with a fresh profile and
the flags this closed network needs) and always stops, by its own process id.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]
IMAGES_JS = """JSON.stringify([...document.images].map(i => ({
  src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    screenshots: dict[str, Path] = field(default_factory=dict)
    viewport: tuple[int, int] = (0, 0)  # CSS pixels the first screen showed
    boxes: dict[str, dict[str, float] | None] = field(default_factory=dict)  # selector -> its box on the first screen
    scroll_width: int = 0  # the page's width: above the viewport's, a reader scrolls sideways

    def above_the_fold(self, selector: str) -> bool:
        """The element is wholly on the first screen, without scrolling either way."""
        box = self.boxes.get(selector)
        width, height = self.viewport
        return bool(box) and box["top"] >= 0 and box["left"] >= 0 and box["bottom"] <= height and \
            box["right"] <= width and box["height"] > 0

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        return [i for i in self.images if not i["complete"] or i["width"] == 0]


class DevTools:
    """A minimal CDP client: one browser-level socket, one page session (flattened), events buffered."""

    def __init__(self, ws: ClientConnection):
        self.ws, self.ids, self.events = ws, itertools.count(1), []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            ev = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def drain(self, seconds: float) -> None:
        """Collect events that arrive shortly after load (late console messages)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for ev in events:
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            out.append("exception: " + str(details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            out.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            out.append(f"network: {params.get('errorText')} ({params.get('type')})")
    return out


def check_page(page: Path, workdir: Path, width: int = 1360, timeout: float = 60, height: int = 900,
               mobile: bool = False, measure: tuple[str, ...] = ()) -> PageCheck:
    """Load `page` (a file) in headless Chromium at width x height (`mobile`: a phone's viewport, its meta viewport
    honoured); screenshots land in `workdir` (the first screen, and the whole page); `measure`: CSS selectors whose
    bounding boxes on the first screen are recorded (PageCheck.boxes)."""
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium not found")
    workdir.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir))  # fresh: no stale DevToolsActivePort
    log = open(workdir / "chromium.log", "wb")
    proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start: {(workdir / 'chromium.log').read_text()[-2000:]}")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=timeout, proxy=None) as ws:
            return _inspect(DevTools(ws), page, workdir, (width, height, mobile), timeout, measure)
    finally:
        log.close()
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


BOX_JS = """(() => { const el = document.querySelector(%s); if (!el) return null;
  const r = el.getBoundingClientRect();
  return {top: r.top, left: r.left, bottom: r.bottom, right: r.right, height: r.height}; })()"""


def _inspect(cdp: DevTools, page: Path, workdir: Path, screen: tuple[int, int, bool], timeout: float,
             measure: tuple[str, ...]) -> PageCheck:
    width, height, mobile = screen
    target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.send(f"{domain}.enable", session=session)
    cdp.send("Emulation.setDeviceMetricsOverride",
             {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, session=session)
    cdp.events.clear()
    cdp.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    cdp.wait_for("Page.loadEventFired", timeout)
    cdp.drain(0.5)
    check = PageCheck()
    value = cdp.send("Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True}, session=session)
    check.images = json.loads(value["result"]["value"])
    def evaluate(expression: str):
        return cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                        session=session)["result"].get("value")

    check.title = evaluate("document.title")
    check.viewport = (evaluate("window.innerWidth"), evaluate("window.innerHeight"))
    check.scroll_width = evaluate("document.documentElement.scrollWidth")
    check.boxes = {selector: evaluate(BOX_JS % json.dumps(selector)) for selector in measure}
    shot = cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)
    check.screenshots["top"] = workdir / f"screenshot-top-{width}x{height}.png"
    check.screenshots["top"].write_bytes(base64.b64decode(shot["data"]))
    full = cdp.send("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
    cdp.send("Emulation.setDeviceMetricsOverride",
             {"width": width, "height": int(min(full, 12000)), "deviceScaleFactor": 1, "mobile": mobile},
             session=session)
    shot = cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)
    check.screenshots["full"] = workdir / f"screenshot-full-{width}x{height}.png"
    check.screenshots["full"].write_bytes(base64.b64decode(shot["data"]))
    cdp.drain(0.2)
    check.console_errors = _errors(cdp.events)
    return check
