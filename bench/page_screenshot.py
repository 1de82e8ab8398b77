"""The README's screenshot of the editor's page: the bundled models, 8 headlines (seed 0), two starred, one check.

    .venv/bin/python bench/page_screenshot.py [--out docs/page.png]
"""
import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serve_load import free_port, start  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="docs/page.png")
    args = p.parse_args()
    port = free_port()
    server = start(port, 2)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}")
            page.fill("#n", "8")
            page.fill("#seed", "0")
            page.fill("#keywords", "dog")
            page.click("#generate")
            page.locator("#results tbody tr").nth(7).wait_for(timeout=120_000)
            for i in (1, 4):
                page.locator("#results tbody tr").nth(i).locator("button.star").click()
            page.fill("#check-text", "17 Things Only Dog Owners Will Understand")
            page.click("#check")
            page.wait_for_function("document.querySelector('#check-result').textContent.startsWith('Clickbait')")
            time.sleep(0.3)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"{args.out}: {Path(args.out).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
