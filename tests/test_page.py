"""The editor's page in a real browser: Debian's headless Chromium, driven by Playwright, against a server this
test starts on a free loopback port."""
import csv
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
XSS = "<img src=x onerror=alert(1)>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_bundle_path, clas_bundle_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clickbait.cli", "serve", "--port", str(port), "--model",
                             str(tiny_bundle_path), "--classifier", str(clas_bundle_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=5) as r:
                if json.load(r)["status"] == "ok":
                    break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install puts it there)")
def test_an_editor_generates_stars_exports_and_checks_in_a_real_browser(server, tmp_path):
    started = time.time()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(accept_downloads=True, viewport={"width": 1000, "height": 900})
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server)
        page.fill("#n", "5")
        page.fill("#min_len", "3")
        page.fill("#max_len", "10")
        page.fill("#seed", "0")
        page.press("#seed", "Enter")  # the form submits from the keyboard
        rows = page.locator("#results tbody tr")
        rows.nth(4).wait_for(timeout=60_000)
        assert rows.count() == 5
        texts = [rows.nth(i).locator("td.headline").inner_text() for i in range(5)]
        fluency = [float(rows.nth(i).locator("td.num").nth(1).inner_text()) for i in range(5)]
        assert fluency == sorted(fluency, reverse=True)  # the same headlines, most fluent first
        rows.nth(0).locator("button.star").click()
        rows.nth(2).locator("button.star").focus()
        page.keyboard.press("Space")  # starring works from the keyboard too
        assert page.inner_text("#starred-count") == "2 starred"
        with page.expect_download() as download:
            page.click("#export")
        saved = tmp_path / "starred.csv"
        download.value.save_as(saved)
        with open(saved, newline="", encoding="utf-8") as f:
            exported = list(csv.DictReader(f))
        assert [r["text"] for r in exported] == [texts[0], texts[2]]
        assert all(0 <= float(r["clickbait"]) <= 1 for r in exported)

        page.fill("#check-text", "We Ranked the the Best Pizzas")
        page.click("#check")
        page.wait_for_function("document.querySelector('#check-result').textContent.startsWith('Clickbait')")
        assert "doubled word: the the" in page.inner_text("#check-result")

        page.fill("#n", "2")
        page.fill("#prefix", XSS)
        page.click("#generate")
        page.wait_for_function(f"document.querySelector('#results tbody td.headline')"
                               f".textContent.startsWith({json.dumps(XSS)})", timeout=60_000)
        assert page.locator("#results img").count() == 0 and not dialogs  # shown as text, nothing ran
        page.set_viewport_size({"width": 380, "height": 900})  # a narrow window still shows the headlines
        assert page.locator("#results td.headline").first.is_visible()
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert (tmp_path / "page.png").stat().st_size > 10_000
    print(f"browser test: {time.time() - started:.1f} s")
