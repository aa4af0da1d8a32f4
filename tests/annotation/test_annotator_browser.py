"""The browser annotator driven in real headless Chromium (Debian's package, through
Playwright): an AV1 episode stepped frame by frame (the frame shown is the frame the
dataset holds), boundaries marked with the keyboard, saved, found again after a reload
and in the annotation file; a second tab never loses the first tab's episodes."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from adv_pipeline.annotation.server import AnnotatorConfig, create_app
from adv_pipeline.lerobot import LeRobotDatasetReader

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [  # a closed network: no background connections, no sandbox as root
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def annotator(robot_source, tmp_path):
    """The annotator of the robot fixture (AV1, three cameras) on a free loopback port."""
    import uvicorn

    annotations = tmp_path / "annotations.jsonl"
    app = create_app(AnnotatorConfig(robot_source, annotations, "observation.state", (6, 13)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "the annotator did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/", annotations
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), (
        "Chromium is missing: the README's test command installs it (apt-get install chromium)"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


SETTLED = (
    "Array.from(document.querySelectorAll('video')).every(v => !v.seeking && v.readyState >= 2)"
)


def _shown_frame(page) -> np.ndarray:
    """The first camera's current picture, as the page draws it (H, W, 3)."""
    pixels = page.evaluate(
        """() => { const v = document.querySelector('video');
                   const c = document.createElement('canvas');
                   c.width = v.videoWidth; c.height = v.videoHeight;
                   const g = c.getContext('2d'); g.drawImage(v, 0, 0);
                   const data = g.getImageData(0, 0, c.width, c.height).data;
                   return [c.height, c.width, Array.from(data)]; }"""
    )
    h, w, data = pixels
    return np.asarray(data, dtype=np.float64).reshape(h, w, 4)[..., :3]


def _open(page, url: str, episode: int) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#episodes", str(episode))
    page.wait_for_function(f"state.episode && state.episode.episode_index === {episode}")
    page.wait_for_function(SETTLED)


def _press(page, *keys: str) -> None:
    page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, not a control
    for key in keys:
        page.keyboard.press(key)
        page.wait_for_function(SETTLED)


@pytest.mark.slow
def test_mark_save_reload_with_the_keyboard(annotator, browser, robot_source):
    url, annotations = annotator
    ds = LeRobotDatasetReader(robot_source)
    camera = ds.video_keys[0]
    decoded = [f[camera].astype(np.float64) for f in ds.iter_frames(1, cameras=[camera])]
    page = browser.new_page()
    _open(page, url, 1)
    assert "0 / 27" in page.inner_text("#frame")

    # stepping shows exactly the dataset's frame (closest of all decoded frames)
    _press(page, "ArrowRight", "ArrowRight", "ArrowRight")
    assert "frame 3 /" in page.inner_text("#frame")
    shown = _shown_frame(page)
    errors = [np.abs(shown - f).mean() for f in decoded]
    assert int(np.argmin(errors)) == 3, errors

    _press(page, "s", "Shift+ArrowRight", "ArrowRight", "ArrowRight", "b")
    _press(page, "ArrowRight", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowRight", "e", "x")
    assert "start 3 | boundaries [15] | end 20 | stages 2 | success true" in page.inner_text(
        "#marks"
    )
    _press(page, "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('saved')")
    assert json.loads(annotations.read_text()) == {
        "episode_index": 1,
        "start": 3,
        "end": 20,
        "boundaries": [15],
        "success": True,
    }

    page.reload()
    _open(page, url, 1)
    assert "start 3 | boundaries [15] | end 20" in page.inner_text("#marks")
    assert page.inner_text("#status") == "annotated"
    # gripper suggestions are offered as buttons (dimensions 6 and 13 move)
    assert page.locator("#suggestions button").count() >= 1


@pytest.mark.slow
def test_two_tabs_keep_each_others_episodes(annotator, browser):
    url, annotations = annotator
    first, second = browser.new_page(), browser.new_page()
    _open(first, url, 0)
    _open(second, url, 2)  # loaded before the first tab saves
    for page in (first, second):
        _press(page, "s", "ArrowRight", "ArrowRight", "b", "ArrowRight", "ArrowRight", "e", "Enter")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('saved')")
    rows = [json.loads(line) for line in annotations.read_text().splitlines()]
    assert [(r["episode_index"], r["start"], r["boundaries"], r["end"]) for r in rows] == [
        (0, 0, [2], 4),
        (2, 0, [2], 4),
    ]
    # a bad mark is refused in the page, naming the fix, and nothing is written
    before = annotations.read_text()
    first.evaluate("state.start = 10; state.end = 5; state.boundaries = [7];")
    _press(first, "Enter")
    first.wait_for_function("document.querySelector('#status').className === 'error'")
    assert "Fix:" in first.inner_text("#status")
    assert annotations.read_text() == before


def _request(url: str, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    """One HTTP request to the annotator over loopback (headers as given, Host included)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    data = body if isinstance(body, bytes | type(None)) else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=headers or {})
    reply = conn.getresponse()
    payload = reply.read()
    conn.close()
    return reply.status, json.loads(payload) if payload.startswith(b"{") else {}


def test_the_annotator_answers_only_its_own_page_and_refuses_bad_marks(annotator):
    url, annotations = annotator
    here = url.rstrip("/").removeprefix("http://")
    good = {"start": 0, "end": 20, "boundaries": [8]}
    path = "/api/episodes/0/annotation"

    # DNS rebinding: another host name reads nothing and writes nothing
    status, reply = _request(url, "GET", "/api/dataset", headers={"Host": "evil.example:80"})
    assert status == 403 and "Host 'evil.example:80' is not this annotator's" in reply["error"]
    foreign = {"Host": here, "Origin": "http://evil.example", "Content-Type": "application/json"}
    status, reply = _request(url, "PUT", path, good, foreign)
    assert status == 403 and "origin 'http://evil.example'" in reply["error"]
    assert not annotations.exists()

    # its own page saves; the same checks as the annotation pipeline's on the whole file
    own = {"Host": here, "Origin": f"http://{here}", "Content-Type": "application/json"}
    assert _request(url, "PUT", path, good, own)[0] == 200
    status, reply = _request(url, "PUT", "/api/episodes/1/annotation",
                             {"start": 0, "end": 20, "boundaries": [5, 9, 14]}, own)  # fmt: skip
    assert status == 400
    assert "episode 1: 3 boundaries make 4 stages, but the first record has 2" in reply["error"]
    assert "Fix: give every episode 1 boundaries" in reply["error"]

    # every bad body gets 400 and a message, never 500
    for body in (b"[1, 2, 3]", b'"hello"', b"null", b"[" * 100_000 + b"]" * 100_000,
                 b'{"start": 0, "end": Infinity, "boundaries": [8]}',
                 b'{"start": NaN, "end": 3, "boundaries": [1]}',
                 b'{"start": 0, "end": 1e308, "boundaries": [0.1], "unit": "s"}',
                 b"x" * 70_000):  # fmt: skip
        status, reply = _request(url, "PUT", "/api/episodes/2/annotation", body, own)
        assert status == 400 and reply["error"].startswith("episode 2: not saved:"), body[:20]
        assert "boundaries make" not in reply["error"], reply  # refused for the body itself
    huge = {"start": 0, "end": 1e308, "boundaries": [0.1], "unit": "s"}
    status, reply = _request(url, "PUT", "/api/episodes/2/annotation", huge, own)
    assert "end is 1e+308, not a frame or second of an episode. Fix:" in reply["error"]
    saved = [json.loads(x) for x in annotations.read_text().splitlines()]
    assert [r["episode_index"] for r in saved] == [0]
