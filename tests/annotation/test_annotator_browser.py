"""The browser annotator, started as users start it (``adv-pipeline annotate``) in its own
process, driven in real headless Chromium (Debian's package, through Playwright): an AV1
episode stepped frame by frame (the frame shown is the frame the dataset holds),
boundaries marked with the keyboard, saved, found again after a reload and in the
annotation file; a second tab never loses the first tab's episodes. Its HTTP API over
loopback refuses foreign host names and origins and bad records, writing nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adv_pipeline.annotation import (
    AnnotationConfig,
    AnnotationError,
    AnnotationFile,
    annotated_dataset,
    read_annotations,
)
from adv_pipeline.annotation.records import parse_record
from adv_pipeline.lerobot import LeRobotDatasetReader

from ..server_process import server_process

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


@pytest.fixture(scope="module")
def annotator_process(robot_source, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """``adv-pipeline annotate`` of the robot fixture (AV1, three cameras) in its own
    process on a free loopback port: (its page's URL, its annotation file)."""
    folder = tmp_path_factory.mktemp("annotator")
    annotations = folder / "annotations.jsonl"
    args = ["annotate", str(robot_source), "--annotations", str(annotations), "--port", "0",
            "--gripper-dims", "6,13"]  # fmt: skip
    with server_process(args, folder / "annotate.log", r"open (http://127\.0\.0\.1:\d+/)") as wait:
        yield wait()[1], annotations


@pytest.fixture
def annotator(annotator_process) -> tuple[str, Path]:
    """The module's annotator with no annotation yet (it reads its file at each request)."""
    url, annotations = annotator_process
    annotations.unlink(missing_ok=True)
    return url, annotations


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module (launched once, like the annotator)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), (
        "Chromium is missing: the README's test command installs it (apt-get install chromium)"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium):
    """The module's Chromium; the pages a test opens are closed after it."""
    yield chromium
    for context in chromium.contexts:
        context.close()


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


def _on_disk(path: Path) -> tuple[bytes, int, int] | None:
    """What a write changes: the file's bytes, inode (an atomic rewrite makes a new one)
    and modification time; None when there is no file."""
    if not path.exists():
        return None
    stat = path.stat()
    return path.read_bytes(), stat.st_ino, stat.st_mtime_ns


def test_the_annotator_answers_only_its_own_page_and_refuses_bad_marks(annotator, robot_source):
    """Over loopback, to the annotator's own process: another host name or origin gets
    403, a bad body or a record the annotation pipeline would refuse gets 400 and the
    reason, and the annotation file stays as it was after each; good saves go through."""
    url, annotations = annotator
    here = url.rstrip("/").removeprefix("http://")
    own = {"Host": here, "Origin": f"http://{here}", "Content-Type": "application/json"}
    good = {"start": 0, "end": 20, "boundaries": [8]}

    def refused(status: int, method: str, path: str, body=None, headers=None) -> str:
        """The error of a request answered with ``status``, the file left untouched."""
        before = _on_disk(annotations)
        got, reply = _request(url, method, path, body, headers or own)
        assert (got, _on_disk(annotations)) == (status, before), (method, path, body, reply)
        return reply["error"]

    # DNS rebinding (a page whose host name resolves to 127.0.0.1) reads nothing and writes
    # nothing, and neither does another origin; nothing is created
    rebound = {**own, "Host": "evil.example:80", "Origin": "http://evil.example:80"}
    error = refused(403, "GET", "/api/dataset", headers={"Host": "evil.example:80"})
    assert "Host 'evil.example:80' is not this annotator's" in error
    path = "/api/episodes/0/annotation"
    assert "Host 'evil.example:80'" in refused(403, "PUT", path, good, rebound)
    error = refused(403, "PUT", path, good, {**own, "Origin": "http://evil.example"})
    assert "a write from origin 'http://evil.example'" in error
    assert not annotations.exists()

    # its own page saves
    status, reply = _request(url, "PUT", "/api/episodes/0/annotation", good, own)
    assert status == 200 and reply["record"]["episode_index"] == 0
    saved = _on_disk(annotations)
    for path in ("/api/episodes/0/annotation", "/api/episodes/2/annotation"):  # a file now
        assert "Host 'evil.example:80'" in refused(403, "PUT", path, good, rebound)
        assert "origin 'http://evil.example'" in refused(
            403, "PUT", path, good, {**own, "Origin": "http://evil.example"}
        )

    # a record the annotation pipeline would refuse, with the pipeline's message: the same
    # checks on the whole file as the save would leave it
    bad = {"start": 0, "end": 20, "boundaries": [5, 9, 14]}
    error = refused(400, "PUT", "/api/episodes/1/annotation", bad)
    assert "episode 1: 3 boundaries make 4 stages, but the first record has 2" in error
    assert "Fix: give every episode 1 boundaries" in error
    records = (*read_annotations(annotations), parse_record({**bad, "episode_index": 1}, "x"))
    with pytest.raises(AnnotationError) as pipeline:
        annotated_dataset(
            LeRobotDatasetReader(robot_source),
            AnnotationFile(annotations, records),
            AnnotationConfig(allow_missing=True),
        )
    assert error == f"episode 1: not saved: {pipeline.value}"

    # every bad body gets 400 and a message, never 500
    for body in (b"[1, 2, 3]", b'"hello"', b"null", b"[" * 100_000 + b"]" * 100_000,
                 b'{"start": 0, "end": Infinity, "boundaries": [8]}',
                 b'{"start": NaN, "end": 3, "boundaries": [1]}',
                 b'{"start": 0, "end": 1e308, "boundaries": [0.1], "unit": "s"}',
                 b"x" * 70_000):  # fmt: skip
        error = refused(400, "PUT", "/api/episodes/2/annotation", body)
        assert error.startswith("episode 2: not saved:"), (body[:20], error)
        assert "boundaries make" not in error, error  # refused for the body itself
    huge = {"start": 0, "end": 1e308, "boundaries": [0.1], "unit": "s"}
    error = refused(400, "PUT", "/api/episodes/2/annotation", huge)
    assert "end is 1e+308, not a frame or second of an episode. Fix:" in error
    assert _on_disk(annotations) == saved

    # and a good save still goes through
    status, reply = _request(url, "PUT", "/api/episodes/2/annotation", good, own)
    assert status == 200 and reply["record"]["episode_index"] == 2
    rows = [json.loads(x) for x in annotations.read_text().splitlines()]
    assert [(r["episode_index"], r["start"], r["end"], r["boundaries"]) for r in rows] == [
        (0, 0, 20, [8]),
        (2, 0, 20, [8]),
    ]
