#!/usr/bin/env python3
"""Smoke test of the browser demo (web/, issue #27): serves the page built by web/build.sh,
drives headless Chromium through chromedriver's WebDriver API as a person would (waits for the
GPU, presses "train" with the page's defaults, types a row and presses "predict"), requires
the held-out accuracy to reach 90%, and keeps a screenshot of the trained page.

    python3 .ci/web-demo-smoke.py [SCREENSHOT.png]   (default target/ci-artifacts/web-demo.png)

Chromium's flags come from webdriver.json (headless, WebGPU on). Standard library only.
"""

import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory):
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        with open(os.path.join(ROOT, "webdriver.json")) as f:
            capabilities = json.load(f)
        self.session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)["value"]

    def session_call(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def script(self, source):
        return self.session_call("POST", "/execute/sync", {"script": source, "args": []})

    def wait_for(self, what, source, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.script(source)
            if value:
                return value
            time.sleep(0.5)
        status = self.script("return document.getElementById('status').textContent")
        raise SystemExit(f"web demo: {what} did not happen in {seconds} s; the page says: {status}")


def main():
    screenshot = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "ci-artifacts", "web-demo.png")
    server = serve(os.path.join(ROOT, "web"))
    port = free_port()
    driver_process = subprocess.Popen([os.environ.get("CHROMEDRIVER", "chromedriver"), f"--port={port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        driver = WebDriver(port)
        driver.session_call("POST", "/window/rect", {"width": 1200, "height": 1000})
        driver.session_call("POST", "/url", {"url": f"http://127.0.0.1:{server.server_port}/index.html"})
        state = "return ['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
        if driver.wait_for("opening the GPU", state, 60) != "ready":
            raise SystemExit("web demo: " + driver.script("return document.getElementById('status').textContent"))
        started = time.time()
        driver.script("document.getElementById('train').click()")
        state = "return ['trained', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
        outcome = driver.wait_for("training", state, 600)
        page_status = driver.script("return document.getElementById('status').textContent")
        if outcome != "trained":
            raise SystemExit(f"web demo: {page_status}")
        accuracy = float(driver.script("return document.body.dataset.accuracy"))
        print(f"web demo: trained digits with the page's defaults in {time.time() - started:.1f} s: {page_status}")
        # A typed row (a zero-ish blob) through the predict button: ten probabilities shown.
        row = ",".join(["0", "0", "5", "13", "9", "1", "0", "0"] * 8)
        driver.script(
            f"const box = document.getElementById('values'); box.value = '{row}';"
            " box.dispatchEvent(new Event('input')); document.getElementById('predict').click()"
        )
        driver.wait_for("a prediction", "return document.querySelectorAll('#proba div').length === 10", 60)
        os.makedirs(os.path.dirname(screenshot), exist_ok=True)
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(driver.session_call("GET", "/screenshot")))
        print(f"web demo: screenshot {screenshot}")
        driver.session_call("DELETE", "")
        if accuracy < 0.9:
            raise SystemExit(f"web demo: held-out accuracy {accuracy:.4f} < 0.90 with the page's defaults")
    finally:
        driver_process.terminate()
        server.shutdown()


if __name__ == "__main__":
    main()
