#!/usr/bin/env python3
"""Smoke test of the browser demo (web/, issue #27): serves the page built by web/build.sh,
drives headless Chromium through chromedriver's WebDriver API as a person would (waits for the
GPU, presses "train" with the page's defaults, then "search" (the cross-validated grid search,
its models stacked), types a row and presses "predict"), requires the held-out accuracy of
the trained model and of the search's refitted winner to reach 90%, keeps a screenshot, then
loads a model the native CLI trained (`wgpu-mlp fit -o`) through the page's file input and
requires the page to predict a digits row as `wgpu-mlp predict --proba` does (the same class,
probabilities within 1e-5: the two adapters may sum in different orders).

    python3 .ci/web-demo-smoke.py [SCREENSHOT.png]   (default target/ci-artifacts/web-demo.png)

Chromium's flags come from webdriver.json (headless, WebGPU on). Standard library only.
"""

import base64
import functools
import gzip
import tempfile
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


def check_cli_model(driver):
    """A model the native CLI trained, loaded in the page: the same prediction for a row."""
    cli = os.path.join(ROOT, "target", "release", "wgpu-mlp")
    subprocess.run(["cargo", "build", "-q", "--release", "--bin", "wgpu-mlp"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp, gzip.open(os.path.join(ROOT, "data", "digits.csv.gz"), "rt") as f:
        row = f.readline().strip().split(",")[:64]
        model = os.path.join(tmp, "cli.safetensors")
        rows = os.path.join(tmp, "row.csv")
        with open(rows, "w") as out:
            out.write(",".join(row) + "\n")
        subprocess.run([cli, "fit", os.path.join(ROOT, "data", "digits.csv.gz"), "--folds", "2", "--epochs", "5",
                        "--lr", "0.01", "--hidden", "32", "-q", "-o", model], check=True)
        predicted = subprocess.run([cli, "predict", "--proba", "--no-header", model, rows], check=True,
                                   capture_output=True, text=True).stdout.strip().splitlines()[1].split(",")
        element = driver.session_call("POST", "/element", {"using": "css selector", "value": "#model-file"})
        driver.session_call("POST", f"/element/{next(iter(element.values()))}/value", {"text": model})
        state = "return ['model-loaded', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
        if driver.wait_for("loading the CLI's model", state, 60) != "model-loaded":
            raise SystemExit("web demo: " + driver.script("return document.getElementById('status').textContent"))
    driver.script(
        "delete document.body.dataset.prediction; const box = document.getElementById('values');"
        f" box.value = '{','.join(row)}'; box.dispatchEvent(new Event('input'));"
        " document.getElementById('predict').click()"
    )
    page = [float(p) for p in driver.wait_for("the loaded model's prediction",
                                              "return document.body.dataset.prediction", 60).split(",")]
    cli_p = [float(p) for p in predicted[1:]]
    page_class = max(range(len(page)), key=page.__getitem__)
    worst = max(abs(a - b) for a, b in zip(page, cli_p))
    print(f"web demo: the CLI's model in the page: class {page_class} (CLI {predicted[0]}), "
          f"largest probability difference {worst:.2e}")
    if str(page_class) != predicted[0] or len(page) != len(cli_p) or worst > 1e-5:
        raise SystemExit("web demo: the page predicts differently from the CLI with the CLI's model")


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
        started = time.time()
        driver.script("document.getElementById('search').click()")
        state = "return ['searched', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
        outcome = driver.wait_for("the grid search", state, 900)
        page_status = driver.script("return document.getElementById('status').textContent")
        if outcome != "searched":
            raise SystemExit(f"web demo: {page_status}")
        report = driver.script("return document.getElementById('report').textContent")
        print(f"web demo: {page_status} ({time.time() - started:.1f} s):\n{report}")
        winner = float(report.rsplit("refitted winner: ", 1)[1].split("%")[0]) / 100
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
        check_cli_model(driver)
        driver.session_call("DELETE", "")
        if min(accuracy, winner) < 0.9:
            raise SystemExit(f"web demo: held-out accuracy {accuracy:.4f} (trained), {winner:.4f} (searched) < 0.90")
    finally:
        driver_process.terminate()
        server.shutdown()


if __name__ == "__main__":
    main()
