"""Headless Chromium driven over the DevTools protocol, through a pipe (no port, no driver).

    with Browser() as b:
        page = b.open(path)              # waits for the load event, records console and requests
        page.evaluate("document.title")

Debian's `chromium` is enough (`apt-get install -y chromium`); `chromium_path()` finds it or
installs it where that is possible (root with apt-get), else returns None and the caller skips.
Every request a page makes is recorded, so a test can assert that none leaves the machine.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe"]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def chromium_path(install: bool = True) -> str | None:
    """Path of a Chromium binary; installs Debian's package first where missing and possible."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if install and shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
                return None
        return shutil.which("chromium")
    return None


class BrowserError(RuntimeError):
    pass


class Page:
    """One tab: its console errors, exceptions and requested URLs, plus `evaluate`."""

    def __init__(self, browser: "Browser", session: str):
        self.browser, self.session = browser, session
        self.errors: list[str] = []
        self.requests: list[str] = []

    def send(self, method: str, **params):
        return self.browser.send(method, session=self.session, **params)

    def evaluate(self, expression: str, timeout: float = 30):
        """The value of a JavaScript expression (promises are awaited)."""
        r = self.browser.send("Runtime.evaluate", session=self.session, timeout=timeout, expression=expression,
                              awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression[:80]}...: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        """Poll a JavaScript expression until it is truthy; returns its value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"timed out waiting for {expression!r}")

    def screenshot(self, path: Path) -> Path:
        import base64
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return path

    def click(self, x: float, y: float) -> None:
        """A real mouse click at page coordinates (CSS pixels)."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def close(self) -> None:
        self.browser.send("Target.closeTarget", targetId=self.target)
        self.browser._pages.pop(self.session, None)

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]

    def _event(self, method: str, params: dict) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")


class Browser:
    """A headless Chromium process, talked to over --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, executable: str | None = None, width: int = 1200, height: int = 1600):
        self.executable = executable or chromium_path(install=False)
        if not self.executable:
            raise BrowserError("no chromium found")
        self.size = (width, height)
        self._id = 0
        self._pages: dict[str, Page] = {}
        self._buffer = b""

    def __enter__(self) -> "Browser":
        self._profile = tempfile.mkdtemp(prefix="fairgap-chromium-")
        import fcntl
        # the child's ends go to fds >= 10 first, so that moving them onto 3 and 4 clobbers nothing
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        child_r, child_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)

        def wire():  # in the child: fd 3 reads our commands, fd 4 carries the replies (dup2 clears CLOEXEC)
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)
        self.proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile}",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=wire)
        os.close(child_r)
        os.close(child_w)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def send(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while True:
            reply = self._read(end - time.monotonic(), method)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            page = self._pages.get(reply.get("sessionId"))
            if page and "method" in reply:
                page._event(reply["method"], reply.get("params", {}))
            if reply.get("method") == "Page.loadEventFired" and page:
                page.loaded = True

    def _read(self, timeout: float, what: str) -> dict:
        import select
        while b"\0" not in self._buffer:
            if timeout <= 0 or not select.select([self._from_child], [], [], timeout)[0]:
                raise BrowserError(f"chromium did not answer {what}")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError("chromium exited")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, path: Path | str, timeout: float = 60) -> Page:
        """A new tab on a local file, after its load event (console and requests recorded from the start)."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        page.target, page.loaded = target, False
        self._pages[session] = page
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                  deviceScaleFactor=1, mobile=False)
        url = Path(path).resolve().as_uri() if not str(path).startswith(("file:", "http")) else str(path)
        page.send("Page.navigate", url=url)
        end = time.monotonic() + timeout
        while not page.loaded:
            if time.monotonic() > end:
                raise BrowserError(f"{url} did not load in {timeout} s")
            page.evaluate("1")  # pumps events until the load event arrives
            time.sleep(0.05)
        return page
