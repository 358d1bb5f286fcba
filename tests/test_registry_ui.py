"""The README's click path to a registered model works in the real MLflow UI (headless Chromium, Playwright).

A real ``mlflow server`` (SQLite, local artifacts) gets one tiny model
registered and promoted to ``champion``; the test then clicks the README's
"UI click path" line step by step, from the server's home page, and looks for
the model's name, its description and the alias on the page it reaches.
Playwright's own browser download is not used: it drives Debian's Chromium.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytest.importorskip("mlflow")
pytest.importorskip("torch")
playwright = pytest.importorskip("playwright.sync_api", reason="Python package 'playwright' is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")


def readme_click_path() -> list[str]:
    """The labels of the README's 'UI click path:' line, in order (*label* or `name`)."""
    text = (REPO / "README.md").read_text()
    found = re.search(r"UI click path:(.*)", text)
    assert found, "README.md has no 'UI click path:' line"
    return [italic or code for italic, code in re.findall(r"\*([^*]+)\*|`([^`]+)`", found.group(1))]


def test_readme_click_path_reaches_the_registered_model_and_its_alias(tmp_path):
    from test_registry import tiny_model

    from atacdenoise.registry.register import promote, register_model
    from atacdenoise.registry.server import start_server

    steps = readme_click_path()
    name = steps[-1]  # the path ends on the model; register one under that name
    assert name == "atac-denoiser" and len(steps) >= 3, steps
    with start_server(tmp_path / "mlflow", timeout=120) as server:
        registered = register_model(tiny_model(), server.url, name=name, genome="hg19", timeout=120)
        promote(server.url, name, registered["version"], "champion")
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_default_timeout(30_000)
                page.goto(server.url)
                for label in steps:
                    page.get_by_text(label, exact=True).filter(visible=True).first.click()
                page.wait_for_url(re.compile(rf"#/models/{re.escape(name)}$"))
                expect = playwright.expect
                expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
                expect(page.get_by_text("Denoises shallow ATAC-seq").first).to_be_visible()
                expect(page.get_by_text(re.compile(r"^@\s*champion$")).filter(visible=True).first).to_be_visible()
            except Exception:
                page.screenshot(path=str(tmp_path / "failed.png"))  # kept in pytest's tmp folder to look at
                raise
            finally:
                browser.close()
