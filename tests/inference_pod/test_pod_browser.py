"""The pod's live page in real headless Chromium: the microphone is Chromium's fake capture device
fed from a WAV of real speech; the page streams it over /ws/stream and must draw speaker segments.

Chromium is driven over the DevTools protocol (plain WebSocket JSON), so no extra test dependency.
Debian's `chromium` is installed on first use when missing (as root with apt-get).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from pod_support import running_pod, speech
from websockets.sync.client import connect

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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_live_page_draws_speaker_segments_from_the_microphone(tmp_path: Path) -> None:
    chromium = ensure_chromium()
    wav = tmp_path / "mic.wav"
    sf.write(wav, speech(20.0, "dev00.wav"), 16000, subtype="PCM_16")
    with running_pod(idle_timeout_seconds=30.0) as p:
        assert "capture-worklet.js" in httpx.get(p.http + "/static/app.js").text
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
                cdp.call("Page.navigate", url=p.http + "/?autostart=1")
                wait_for(lambda: cdp.evaluate("document.readyState") == "complete", 30, "page load")

                def state() -> str:
                    return str(cdp.evaluate("document.getElementById('status').dataset.state"))

                def results() -> int:
                    return int(cdp.evaluate("document.getElementById('result-count').textContent") or 0)

                wait_for(lambda: results() >= 3, 60, f"results (status {state()})")
                # segments drawn live while the fake microphone keeps talking
                segments = wait_for(
                    lambda: cdp.evaluate("document.querySelectorAll('#segments li.segment').length"),
                    60,
                    "segments",
                )
                assert segments >= 1
                speakers = cdp.evaluate(
                    "new Set([...document.querySelectorAll('#segments li')].map(l => l.dataset.speaker)).size"
                )
                assert speakers >= 1
                # Stop -> the page sends `end` and shows the final diarization
                cdp.evaluate("document.getElementById('stop').click()")
                wait_for(lambda: state() == "done", 60, "final result")
                assert cdp.evaluate("document.querySelectorAll('#segments li.segment').length") >= 1
                assert "error" not in (cdp.evaluate("document.getElementById('status').textContent") or "")
            finally:
                cdp.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
