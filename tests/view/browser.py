"""Headless Debian chromium driven over the DevTools protocol (aiohttp websockets), for the viewer tests.

    page = await Page.open(CHROMIUM, tmp_path)
    await page.goto(report.as_uri())
    rows = await page.eval("document.querySelectorAll('#episodes tbody tr').length")
    await page.close()   # kills chromium by its PID

Every console error, uncaught exception and error log entry is collected in `page.errors`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1440,1000",
]


class Page:
    """One chromium page over one DevTools websocket."""

    def __init__(self, proc: subprocess.Popen, http: aiohttp.ClientSession, ws: Any):
        self.proc, self._http, self._ws = proc, http, ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._waiters: list[tuple[str, asyncio.Future]] = []
        self.errors: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, chromium: Path, profile: Path, timeout: float = 30) -> Page:
        profile.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [str(chromium), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: close() ends chromium's helpers with it
        )
        try:
            port = await _devtools_port(profile / "DevToolsActivePort", proc, timeout)
            http = aiohttp.ClientSession()
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                targets = await r.json(content_type=None)
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            ws = await http.ws_connect(url, max_msg_size=0)
        except BaseException:
            _kill(proc)
            raise
        page = cls(proc, http, ws)
        for domain in ("Page", "Runtime", "Log"):
            await page.call(f"{domain}.enable")
        return page

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def goto(self, url: str) -> None:
        loaded = self._expect("Page.loadEventFired")
        await self.call("Page.navigate", url=url)
        await asyncio.wait_for(loaded, 30)

    async def eval(self, expression: str) -> Any:
        """The JSON value of a JS expression (a thrown error is a test failure, not a value)."""
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expression!r} threw: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def click(self, selector: str) -> None:
        """A real mouse click (press + release) at the centre of the element."""
        x, y = await self._centre(selector)
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def hover(self, selector: str) -> None:
        x, y = await self._centre(selector)
        await self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    async def _centre(self, selector: str) -> tuple[float, float]:
        box = await self.eval(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        return box[0], box[1]

    async def fit(self, width: int = 1440, max_height: int = 2400) -> None:
        """Size the viewport to the whole page (up to `max_height`) at `width` CSS px, for a full screenshot."""
        await self.viewport(width, 1000)
        await self.viewport(width, min(max_height, int(await self.eval("document.documentElement.scrollHeight"))))

    async def screenshot(self, path: Path) -> bytes:
        """A PNG of the viewport (see `fit`)."""
        shot = await self.call("Page.captureScreenshot", format="png")
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        return data

    async def viewport(self, width: int, height: int) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await self._ws.close()
            await self._http.close()
        finally:
            _kill(self.proc)

    def _expect(self, method: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((method, fut))
        return fut

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
                continue
            self._event(data["method"], data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            self.errors.append(f"exception: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(f"console.error: {[a.get('value', a.get('description')) for a in params['args']]}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")
        for waiter in [w for w in self._waiters if w[0] == method]:
            self._waiters.remove(waiter)
            if not waiter[1].done():
                waiter[1].set_result(params)


async def _devtools_port(path: Path, proc: subprocess.Popen, timeout: float) -> int:
    """Chromium writes its chosen port (--remote-debugging-port=0) as the first line of this file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before DevTools came up")
        if path.exists() and (lines := path.read_text().splitlines()):
            return int(lines[0])
        await asyncio.sleep(0.1)
    raise TimeoutError(f"chromium wrote no {path.name} within {timeout} s")


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
