"""The pod's live page in real headless Chromium: the microphone is Chromium's fake capture device
fed from a WAV of real speech; the page streams it over /ws/stream and must draw speaker segments,
a legend, a scrolling time axis and the input level, survive a dropped connection, start a fresh
timeline on Stop then Start, serve its favicon, and say why when the microphone is unavailable.

Chromium is driven over the DevTools protocol (plain WebSocket JSON), so no extra test dependency.
Debian's `chromium` is installed on first use when missing (as root with apt-get).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from pod_support import ROOT, RunningPod, running_pod
from websockets.sync.client import connect

from tests.polling import polls

# Every test here talks to a real socket: bound each one so a hang fails instead of stalling CI.
pytestmark = pytest.mark.timeout(240)


def ensure_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if shutil.which("apt-get") and Path("/proc/self").exists() and __import__("os").geteuid() == 0:
        subprocess.run(["apt-get", "update"], check=False, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            check=True,
            capture_output=True,
            timeout=1200,
            env={**__import__("os").environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        path = shutil.which("chromium")
        if path:
            return path
    pytest.fail("Debian chromium is required for the browser test (apt-get install -y chromium)")


class DevTools:
    """Minimal Chrome DevTools Protocol client: send a command, wait for its answer."""

    def __init__(self, ws_url: str) -> None:
        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        self.ws.close()


def wait_for(fn: Any, timeout: float, what: str) -> Any:
    for _ in polls(timeout, f"timed out waiting for {what}"):
        value = fn()
        if value:
            return value
        time.sleep(0.25)


DEV00 = ROOT / "tests" / "data" / "dev00.wav"  # 30 s of real AMI speech, in the repository


@pytest.fixture(scope="module")
def pod() -> Iterator[RunningPod]:
    with running_pod(idle_timeout_seconds=30.0) as p:
        yield p


@contextmanager
def chromium_page(tmp_path: Path, *extra: str) -> Iterator[DevTools]:
    """Headless Chromium whose microphone plays dev00.wav; yields a DevTools client on its page."""
    chromium = ensure_chromium()
    wav = tmp_path / "mic.wav"
    samples, rate = sf.read(str(DEV00), dtype="int16")
    sf.write(wav, samples, rate, subtype="PCM_16")
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--mute-audio",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}",
            *extra,
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        wait_for(port_file.exists, 60, "Chromium to start")
        devtools_port = int(wait_for(lambda: port_file.read_text().split("\n")[0], 10, "port"))
        targets = httpx.get(f"http://127.0.0.1:{devtools_port}/json/list", timeout=10).json()
        page = next(t for t in targets if t.get("type") == "page")
        cdp = DevTools(page["webSocketDebuggerUrl"])
        try:
            cdp.call("Page.enable")
            yield cdp
        finally:
            cdp.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_page(cdp: DevTools, url: str) -> None:
    cdp.call("Page.navigate", url=url)
    wait_for(lambda: cdp.evaluate("document.readyState") == "complete", 30, "page load")


class Page:
    """What the live page shows, read from its DOM."""

    def __init__(self, cdp: DevTools) -> None:
        self.cdp = cdp

    def js(self, expression: str) -> Any:
        return self.cdp.evaluate(expression)

    def state(self) -> str:
        return str(self.js("document.getElementById('status').dataset.state"))

    def status(self) -> str:
        return str(self.js("document.getElementById('status').textContent"))

    def results(self) -> int:
        return int(self.js("document.getElementById('result-count').textContent") or 0)

    def sent(self) -> float:
        return float(self.js("document.getElementById('sent-seconds').textContent") or 0)

    def segments(self) -> list[dict[str, Any]]:
        return list(
            self.js(
                "[...document.querySelectorAll('#segments li.segment')].map(l => ({speaker: l.dataset.speaker,"
                " start: Number(l.dataset.start), end: Number(l.dataset.end)}))"
            )
            or []
        )

    def legend(self) -> list[str]:
        return list(self.js("[...document.querySelectorAll('#legend li')].map(l => l.dataset.speaker)") or [])

    def legend_matches_segments(self) -> bool:
        """One snapshot: the legend lists exactly the speakers of the drawn segments."""
        return bool(
            self.js(
                "(() => { const a = [...document.querySelectorAll('#legend li')].map(l => l.dataset.speaker);"
                " const b = new Set([...document.querySelectorAll('#segments li.segment')]"
                ".map(l => l.dataset.speaker));"
                " return a.length === b.size && a.every(x => b.has(x)); })()"
            )
        )

    def canvas(self) -> dict[str, str]:
        return dict(self.js("({...document.getElementById('timeline').dataset})") or {})

    def wait(self, fn: Any, timeout: float, what: str) -> Any:
        return wait_for(fn, timeout, f"{what} (status: {self.status()})")


def test_the_pod_serves_a_favicon(pod: RunningPod) -> None:
    response = httpx.get(pod.http + "/favicon.ico", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00", "an ICO file"
    assert '<link rel="icon" href="/favicon.ico"' in httpx.get(pod.http + "/", timeout=10).text


def test_live_page_draws_speakers_and_survives_a_drop_and_a_restart(pod: RunningPod, tmp_path: Path) -> None:
    assert "capture-worklet.js" in httpx.get(pod.http + "/static/app.js", timeout=10).text
    window = 6  # seconds the timeline shows (?window=): it must scroll within the test
    with chromium_page(tmp_path) as cdp:
        page = Page(cdp)
        open_page(cdp, pod.http + f"/?autostart=1&window={window}")
        assert page.js("document.querySelector('link[rel=icon]').href") == pod.http + "/favicon.ico"
        page.wait(lambda: page.results() >= 3, 60, "results")
        # The level meter follows the microphone: real speech is far above the -60 dB floor.
        page.wait(lambda: float(page.js("document.getElementById('level').dataset.db")) > -45, 30, "input level")
        page.wait(page.segments, 60, "segments")
        # The legend names exactly the speakers drawn, in the timeline's colours.
        page.wait(page.legend_matches_segments, 10, "legend")
        assert page.js("document.getElementById('speaker-count').textContent") == str(len(page.legend()))
        colors = page.js("[...document.querySelectorAll('#legend li')].map(l => l.dataset.color)")
        assert len(set(colors)) == len(colors)
        # Scrolling window and time axis: once more than `window` s were captured, the view has moved
        # on and its ticks are labelled seconds inside it.
        page.wait(lambda: page.sent() > window + 2, 30, "audio beyond one window")
        view = page.canvas()
        start, end = float(view["viewStart"]), float(view["viewEnd"])
        assert start > 0 and end - start == pytest.approx(window, abs=0.01)
        ticks = [float(t) for t in view["ticks"].split(",")]
        assert len(ticks) >= 2 and all(start <= t <= end for t in ticks), (ticks, start, end)

        # The connection drops (the pod drains this stream, as a rolling update does): the page
        # reconnects on its own and keeps drawing on the same timeline.
        before = page.results()
        offset = page.sent()
        pod.call(lambda: [c.begin_shutdown() for c in list(pod.pod.connections)])
        page.wait(lambda: page.js("document.body.dataset.connections") == "2", 30, "a second connection")
        page.wait(lambda: page.state() == "streaming" and page.results() > before + 2, 60, "results after reconnect")
        page.wait(lambda: any(s["speaker"].endswith(" · 2") for s in page.segments()), 60, "second session's segments")
        second = [s for s in page.segments() if s["speaker"].endswith(" · 2")]
        assert min(s["start"] for s in second) >= offset - 0.5, "the second session continues the timeline"
        assert [s for s in page.segments() if not s["speaker"].endswith(" · 2")], "the first session's stay"

        cdp.evaluate("document.getElementById('stop').click()")
        page.wait(lambda: page.state() == "done", 60, "final result")
        assert page.segments() and "error" not in page.status()
        drawn_before = max(s["end"] for s in page.segments())

        # Stop then Start: a fresh timeline, nothing of the first run left or drawn over.
        cleared = page.js(
            "(() => { document.getElementById('start').click(); return ["
            "document.querySelectorAll('#segments li').length, document.querySelectorAll('#legend li').length,"
            "document.getElementById('result-count').textContent, document.getElementById('sent-seconds').textContent];"
            "})()"
        )
        assert cleared == [0, 0, "0", "0.0"], cleared
        page.wait(lambda: page.js("document.body.dataset.connections") == "1", 10, "a new run")
        page.wait(lambda: page.results() >= 3 and page.segments(), 60, "the new run's segments")
        fresh = page.segments()
        assert all(not s["speaker"].endswith(" · 2") for s in fresh), "no segment of the first run"
        assert max(s["end"] for s in fresh) < drawn_before, "the new timeline starts again at 0"
        assert page.legend_matches_segments()
        assert float(page.canvas()["viewStart"]) < float(view["viewStart"]) + window
        cdp.evaluate("document.getElementById('stop').click()")
        page.wait(lambda: page.state() == "done", 60, "the new run's final result")


def test_without_a_secure_context_the_page_says_it_needs_https_or_localhost(pod: RunningPod, tmp_path: Path) -> None:
    # A non-localhost name over plain HTTP (resolved to the pod): browsers hide getUserMedia there.
    with chromium_page(tmp_path, "--host-resolver-rules=MAP voiceflow.test 127.0.0.1") as cdp:
        page = Page(cdp)
        open_page(cdp, f"http://voiceflow.test:{pod.port}/?autostart=1")
        assert page.js("window.isSecureContext") is False
        assert page.state() == "insecure"
        message = page.status()
        assert "HTTPS" in message and "localhost" in message, message
        assert page.js("document.getElementById('start').disabled") is True
        cdp.evaluate("document.getElementById('start').click()")
        assert page.state() == "insecure" and page.results() == 0
