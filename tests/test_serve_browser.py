"""`resdsl serve` in a real headless browser: Debian's chromium driven by playwright (its own browser
downloads are not used). The page shows cifar20's figures and diagram, follows the editor and the
overrides, marks a broken line, and its model.py builds. Screenshots go to docs/images/serve_*.png.

Runs in CI (CI=true, or RESDSL_REQUIRE_BROWSER=1 as .ci/run sets: chromium and playwright must be there);
skipped locally without them."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM = os.environ.get("RESDSL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright; it is in the dev extra)"
    if not os.path.exists(CHROMIUM):
        return "chromium is not installed (apt-get install chromium)"
    return None


REQUIRED = os.environ.get("CI") == "true" or os.environ.get("RESDSL_REQUIRE_BROWSER") == "1"
if _missing() and not REQUIRED:
    pytest.skip(_missing(), allow_module_level=True)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The real command, `resdsl serve specs/cifar20.rd --port 0`, in a subprocess."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "resdsl", "serve", "specs/cifar20.rd", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, f"no address in {line!r}"
        yield found.group()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def page(url: str):
    from playwright.sync_api import sync_playwright

    assert _missing() is None, _missing()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 960}, accept_downloads=True)
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else outside.append(r.url))
        page.goto(url)
        yield page
        assert outside == []  # offline: nothing but the server itself
        browser.close()


def _status(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_contain_text(text, timeout=15000)  # locators: the page's CSP forbids eval


def test_the_page_shows_cifar20_and_follows_the_editor(page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _status(page, "269,722 params")
    expect(page.locator("#totals")).to_contain_text("params 269,722")
    expect(page.locator("#report tbody tr")).to_have_count(5)
    page.wait_for_selector("#diagram svg g#section_conv4")
    page.wait_for_selector("#block svg")
    page.locator("#diagram g#section_conv3").click()  # a stage: its blocks
    expect(page.locator("#block-name")).to_have_text("conv3")
    expect(page.locator("#block svg")).to_contain_text("conv3.0")
    page.select_option("#block-index", "2")  # the stage's third block
    expect(page.locator("#block svg")).to_contain_text("conv3.2")
    page.select_option("#block-index", "0")
    expect(page.locator("#block svg")).to_contain_text("conv3.0")
    page.screenshot(path=str(IMAGES / "serve_cifar20.png"))

    original = page.input_value("#source")
    page.fill("#source", original.replace("param n = 3", "param n = 5"))
    _status(page, "464,154 params")
    expect(page.locator("#status")).to_contain_text("32 layers")

    page.locator("#shortcut button[data-value='B']").click()  # projections where the width doubles
    _status(page, "466,906 params")
    expect(page.locator("#report-title")).to_contain_text("shortcut B")
    page.locator("#shortcut button[data-value='']").click()
    page.fill("#params input[name='n']", "9")
    _status(page, "56 layers")
    page.fill("#params input[name='n']", "")
    _status(page, "464,154 params")

    page.fill("#source", original.replace("basic(32, stride: 2)", "basic(32, strid: 2)"))
    page.wait_for_selector(".gutter .ln.error")
    expect(page.locator(".gutter .ln.error")).to_have_text("15")
    expect(page.locator(".marks .band[data-line='15']")).to_have_count(1)
    expect(page.locator("#errors")).to_contain_text("specs/cifar20.rd:15:")
    expect(page.locator("#status")).to_have_text("1 error")
    page.screenshot(path=str(IMAGES / "serve_error.png"))

    page.fill("#source", original)
    _status(page, "269,722 params")
    expect(page.locator(".gutter .ln.error")).to_have_count(0)
    with page.expect_download() as download:
        page.click("#download-model")
    assert download.value.suggested_filename == "model.py"
    target = tmp_path / "model.py"
    download.value.save_as(target)
    spec = importlib.util.spec_from_file_location("served_model", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model()
    assert sum(p.numel() for p in model.parameters()) == 269_722
