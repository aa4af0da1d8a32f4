"""Screenshot of the browser annotator (docs/annotator.png), taken in headless Chromium.

    python docs/annotator_screenshot.py data/01_raw/demo data/01_raw/demo_annotations.jsonl \
        docs/annotator.png

Serves the annotator on 127.0.0.1:8811 with gripper dimension 5 (the demo's), opens
episode 2, steps 70 frames and saves a full-page screenshot.
"""

import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from adv_pipeline.annotation.server import AnnotatorConfig, create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.annotation.test_annotator_browser import FLAGS  # noqa: E402  (Chromium offline)

root, ann, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
app = create_app(AnnotatorConfig(root, ann, "observation.state", (5,)))
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=8811, log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
    page = b.new_page(viewport={"width": 1100, "height": 760})
    page.goto("http://127.0.0.1:8811/")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#episodes", "2")
    page.wait_for_function("state.episode && state.episode.episode_index === 2")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 2)",
        timeout=10000,
    )
    page.locator("body").click(position={"x": 5, "y": 5})
    for _ in range(7):
        page.keyboard.press("Shift+ArrowRight")
    time.sleep(1)
    page.screenshot(path=out, full_page=True)
    b.close()
server.should_exit = True
