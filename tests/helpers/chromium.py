# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Headless Chromium for the report tests: Debian's chromium (installed when missing), driven over the DevTools
protocol on a pipe (``--remote-debugging-pipe``: no port, no extra Python package).

``open_page(path)`` loads a file in a fresh profile at a given window size and returns what the browser saw:
load time, the page's layout measured with the DevTools protocol's own ``Runtime.evaluate`` (the page itself
has no script and its Content-Security-Policy forbids one), every network request the page made, and
optionally a screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import typing as t

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


class ChromiumUnavailable(Exception):
    """Chromium is not installed and cannot be (a reason for a skip)."""


def chromium() -> str:
    """Path of Debian's chromium, apt-get installed when missing (needs root)."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path:
        return path
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ChromiumUnavailable("chromium is missing and apt-get cannot install it here")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ChromiumUnavailable("apt-get install chromium failed: %s" % proc.stderr[-2000:])
    path = shutil.which("chromium")
    if not path:
        raise ChromiumUnavailable("chromium installed but not on PATH")
    return path


def run(args: t.Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """One chromium command line (``--dump-dom``, ``--screenshot``) in a fresh profile."""
    profile = tempfile.mkdtemp(prefix="memfrag-chromium-")
    try:
        return subprocess.run([chromium()] + FLAGS + ["--user-data-dir=" + profile] + list(args),
                              capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class _Pipe(object):
    """The DevTools protocol over fds 3 (to the browser) and 4 (from it): JSON messages ended by NUL."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float) -> None:
        self.write_fd, self.read_fd, self.deadline = write_fd, read_fd, deadline
        self.buffer = b""
        self.events = []  # type: t.List[t.Dict[str, t.Any]]
        self.next_id = 0

    def _read_message(self) -> t.Dict[str, t.Any]:
        import select
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _w, _x = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed the DevTools pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message.decode("utf-8"))

    def call(self, method: str, params: t.Optional[t.Dict[str, t.Any]] = None, session: t.Optional[str] = None) -> t.Any:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode("utf-8") + b"\0"
        while data:
            data = data[os.write(self.write_fd, data):]
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str) -> t.Dict[str, t.Any]:
        for i, event in enumerate(self.events):
            if event["method"] == method:
                return self.events.pop(i)
        while True:
            reply = self._read_message()
            if reply.get("method") == method:
                return reply
            if "method" in reply:
                self.events.append(reply)


def open_page(path: str, evaluate: str, width: int = 1400, height: int = 900, screenshot: t.Optional[str] = None,
              timeout: float = 300) -> t.Dict[str, t.Any]:
    """Load ``file://path`` and return ``{'load_seconds', 'measure' (evaluate's JSON value), 'requests'}``.

    ``evaluate`` is a JavaScript expression run by the DevTools protocol after the load event; its value must be
    JSON. ``requests`` lists every URL the page asked for (the page itself included)."""
    profile = tempfile.mkdtemp(prefix="memfrag-chromium-")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    cmd = [chromium()] + FLAGS + ["--user-data-dir=" + profile, "--remote-debugging-pipe",
                                  "--window-size=%d,%d" % (width, height), "about:blank"]

    def _child_fds() -> None:
        # The protocol's fixed descriptors: the browser reads fd 3 and writes fd 4. Moved out of the way first
        # (either end may already be 3 or 4), then everything else above 4 is closed.
        read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)
        os.closerange(5, 4096)

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            close_fds=False, preexec_fn=_child_fds)
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(to_browser_w, from_browser_r, time.monotonic() + timeout)
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        pipe.call("Page.enable", session=session)
        pipe.call("Network.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        started = time.monotonic()
        pipe.call("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session=session)
        pipe.wait_event("Page.loadEventFired")
        loaded = time.monotonic() - started
        value = pipe.call("Runtime.evaluate", {"expression": evaluate, "returnByValue": True},
                          session=session)["result"].get("value")
        if screenshot:
            data = pipe.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(data))
        requests = [e["params"]["request"]["url"] for e in pipe.events if e["method"] == "Network.requestWillBeSent"]
        try:
            pipe.call("Browser.close")
        except (EOFError, RuntimeError, TimeoutError, OSError):
            pass
        return {"load_seconds": loaded, "measure": value, "requests": requests}
    finally:
        os.close(to_browser_w)
        os.close(from_browser_r)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
