"""Lesson 02 in a real JupyterLab driven by headless Chromium, configured as Binder serves it.

Opens the instructor version of lesson 02, runs all cells, moves the beta slider and checks the
figure redraws, then presses nbgrader's Validate button and reads the dialog. Screenshots of each
step go to test-artifacts/browser/. Skipped only where no Chromium binary can be found.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from browser_support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    NOTEBOOK,
    ROOT,
    JupyterLab,
    click_menu,
    code_cell_prompts,
    error_outputs,
    find_chromium,
    kernel_status,
    learner_environment,
    wait_for_all_cells_run,
    wait_for_kernel_idle,
    wait_for_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

# IDIVKIT_BROWSER_LESSON points the test at another notebook (only to develop the harness).
LESSON = Path(
    os.environ.get(
        "IDIVKIT_BROWSER_LESSON",
        ROOT / "course" / "source" / "02_beta_divergence" / "02_beta_divergence.ipynb",
    )
)
# What binder/postBuild switches off for learners (the Validate button stays).
LEARNER_DISABLED_PLUGINS = {
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:menu",
}
VALIDATE_SUCCESS = "Success! Your notebook passes all the tests."


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium binary (looked at $IDIVKIT_CHROMIUM, /usr/bin/chromium, PATH); "
            "install Debian's: apt-get install -y chromium"
        )
    return path


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/browser/, emptied of the previous run's screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):  # this run's screenshots only
        old.unlink()
    return ARTIFACTS


@pytest.fixture
def lab(tmp_path, artifacts):
    """JupyterLab, configured as on Binder, over a copy of lesson 02's folder."""
    assert LESSON.is_file(), f"lesson notebook {LESSON} is missing"
    root = tmp_path / "course"
    root.mkdir()
    shutil.copytree(LESSON.parent, root / LESSON.parent.name)
    # No nbgrader_config.py in the server's folder, as on Binder: binder/postBuild's user-level
    # nbgrader_config.py gives Validate the course's settings.
    env = learner_environment(tmp_path / "jupyter")
    with JupyterLab(root, env, log_path=artifacts / "jupyterlab.log") as server:
        yield server


class Steps:
    """Names each step, saves its screenshot, and on failure saves one more and says where."""

    def __init__(self, page, folder: Path, lab: JupyterLab):
        self.page, self.folder, self.lab = page, folder, lab
        self.number = 0
        self.times: dict[str, float] = {}

    def shot(self, name: str) -> Path:
        """Screenshot once the page is painted: two consecutive captures agree (10 s at most)."""
        path = self.folder / f"{self.number:02d}_{name}.png"
        previous, deadline = None, time.monotonic() + 10
        while True:
            self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            capture = self.page.screenshot()
            if capture == previous or time.monotonic() > deadline:
                break
            previous = capture
        path.write_bytes(capture)
        return path

    @contextlib.contextmanager
    def step(self, name: str):
        self.number += 1
        start = time.monotonic()
        try:
            yield
        except Exception as error:
            path = self.folder / f"{self.number:02d}_{name}_FAILED.png"
            with contextlib.suppress(Exception):
                self.page.screenshot(path=str(path), full_page=False)
            raise AssertionError(
                f"step {self.number} '{name}' failed: {error}\n"
                f"screenshot: {path}\nJupyterLab log: {self.lab.log_path}"
            ) from error
        self.times[name] = time.monotonic() - start
        self.shot(name)


def notebook_images(page) -> list[str]:
    """The src of every image in the notebook's outputs (widget outputs included)."""
    return page.evaluate(
        "(sel) => Array.from(document.querySelectorAll(sel + ' .jp-OutputArea img')).map(i => i.src)",
        NOTEBOOK,
    )


def notebook_output_text(page) -> str:
    """The visible text of every output area in the notebook."""
    return page.evaluate(
        "(sel) => Array.from(document.querySelectorAll(sel + ' .jp-OutputArea'))"
        ".map(a => a.innerText).join('\\n')",
        NOTEBOOK,
    )


def test_lesson_02_runs_slides_and_validates_in_jupyterlab(lab, chromium, artifacts, tmp_path):
    from playwright.sync_api import sync_playwright

    lesson_path = f"{LESSON.parent.name}/{LESSON.name}"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            steps = Steps(page, artifacts, lab)

            with steps.step("opened"):
                page.goto(lab.url(f"lab/tree/{lesson_path}"), wait_until="domcontentloaded")
                wait_for_notebook(page, timeout_ms=120_000)
                kernel = lab.wait_for_one_connected_idle_kernel(timeout=120)
                page_config = page.evaluate(
                    "() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                )
                disabled = set(page_config.get("disabledExtensions", []))
                locked = set(page_config.get("lockedExtensions", []))
                assert LEARNER_DISABLED_PLUGINS <= disabled & locked, (
                    f"binder/postBuild's learner switches are not in effect: "
                    f"disabled={disabled}, locked={locked}"
                )
                assert page.locator(f"{NOTEBOOK} .validate-button").count() == 1, (
                    "nbgrader's Validate button is missing from the notebook toolbar"
                )
                menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
                assert "Nbgrader" not in menus, f"learners see the Nbgrader menu: {menus}"
                assert lab.http_status("formgrader") == 404, "the formgrader server extension is on"

            with steps.step("ran_all_cells"):
                wait_for_kernel_idle(page, timeout_ms=60_000)
                click_menu(page, "Run", "Run All Cells")
                wait_for_all_cells_run(page, timeout_ms=240_000)
                errors = error_outputs(page)
                assert not errors, "cells raised errors:\n" + "\n---\n".join(e[-1500:] for e in errors)
                prompts = code_cell_prompts(page)
                assert prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), (
                    f"not every code cell ran: {prompts}"
                )

            with steps.step("slider_moved"):
                # The lesson tags its widgets with CSS classes for this test; a stand-in
                # notebook may instead label its slider "beta".
                slider = page.locator(f"{NOTEBOOK} .idivkit-beta-slider")
                if slider.count() == 0:
                    slider = page.locator(f"{NOTEBOOK} .widget-slider").filter(
                        has=page.locator(".widget-label", has_text=re.compile("^(beta|β)$", re.I))
                    )
                assert slider.count() == 1, (
                    f"expected one beta slider, found {slider.count()} "
                    f"(sliders on the page: {page.locator('.widget-slider').count()})"
                )
                slider.scroll_into_view_if_needed()
                readout = slider.locator(".widget-readout")
                before_value = readout.inner_text().strip()
                before_images = notebook_images(page)
                assert before_images, "no figure was drawn before moving the slider"
                assert f"beta = {before_value}" in notebook_output_text(page), (
                    f"no 'beta = {before_value}' caption under the figure before moving the slider"
                )
                handle = slider.locator(".noUi-handle").first
                handle.focus()
                handle.press("ArrowRight")
                page.wait_for_function(
                    "([el, before]) => el.textContent.trim() !== before",
                    arg=[readout.element_handle(), before_value],
                    timeout=30_000,
                )
                after_value = readout.inner_text().strip()
                assert float(after_value) > float(before_value), (before_value, after_value)
                # The figure is redrawn: a new image, captioned with the new beta.
                page.wait_for_function(
                    """([sel, before, caption]) => {
                        const area = Array.from(document.querySelectorAll(sel + ' .jp-OutputArea'));
                        const srcs = area.flatMap(a => Array.from(a.querySelectorAll('img')))
                                         .map(i => i.src);
                        const text = area.map(a => a.innerText).join('\\n');
                        return srcs.some(s => !before.includes(s)) && text.includes(caption);
                    }""",
                    arg=[NOTEBOOK, before_images, f"beta = {after_value}"],
                    timeout=60_000,
                )
                # Show the new figure, fully decoded, for the screenshot.
                new_image = page.wait_for_function(
                    """([sel, before]) => {
                        const img = Array.from(document.querySelectorAll(sel + ' .jp-OutputArea img'))
                                         .find(i => !before.includes(i.src));
                        return img && img.complete && img.naturalWidth > 0 ? img : null;
                    }""",
                    arg=[NOTEBOOK, before_images],
                    timeout=30_000,
                ).as_element()
                new_image.evaluate("img => img.scrollIntoView({block: 'center'})")
                new_image.evaluate("img => img.decode()")  # decoded before the screenshot
                assert new_image.evaluate("img => img.isConnected") and new_image.is_visible()
                src = new_image.get_attribute("src")
                assert src.startswith("data:image/png;base64,"), src[:60]
                figure = base64.b64decode(src.split(",", 1)[1])
                (artifacts / "03_figure_after_slider.png").write_bytes(figure)
                box = new_image.bounding_box()
                assert box and box["width"] > 100 and box["height"] > 100, f"figure too small: {box}"
                wait_for_kernel_idle(page, timeout_ms=60_000)
                steps.slider_values = (before_value, after_value)

            with steps.step("validated"):
                page.locator(f"{NOTEBOOK} .validate-button").first.click()
                dialog = page.locator(
                    ".jp-Dialog .validation-success, .jp-Dialog .validation-failed, "
                    ".jp-Dialog :text('There was an error')"
                ).first
                dialog.wait_for(state="visible", timeout=240_000)
                text = page.locator(".jp-Dialog").first.inner_text()
                assert VALIDATE_SUCCESS in text, f"Validate did not pass; dialog says:\n{text}"

            print(
                f"\nslider {steps.slider_values[0]} -> {steps.slider_values[1]}; step times "
                + ", ".join(f"{k} {v:.1f} s" for k, v in steps.times.items())
                + f"; kernel {kernel_status(page)}; screenshots in {artifacts}"
            )
        finally:
            context.close()
