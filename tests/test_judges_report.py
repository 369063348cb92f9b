"""The judge's report: one self-contained HTML page (charts embedded as images, nothing
fetched) comparing twins, which a real browser (headless Chromium) opens and renders."""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess

import pytest

from cognitivetwin_core.cli import main
from tests.waits import WORK_TIMEOUT_S

SHARE = {"share": 0.6, "low": 0.4, "high": 0.8}


def _evaluation(twin_share: float) -> dict:
    example = {
        "context": "Are you coming to dinner?",
        "real": "omg yes lol",
        "twin": "ya ya dinner is fine w me",
        "base": "Certainly, I will be there.",
    }
    profile = {"length": 0.3, "punctuation_rate": 0.1, "question_rate": 0.2, "exclamation_rate": 0.0, "emoji": 0.5}
    return {
        "adapter": "x",
        "base_model": "smollm2-135m",
        "held_out": {"source": "10 conversations", "person": "Maya", "conversations": 10, "replies": 40},
        "perplexity": {"base": 30.0, "twin": 22.0},
        "examples": [copy.deepcopy(example) for _ in range(4)],
        "judge": {
            "real": {"share": 0.9, "low": 0.8, "high": 1.0},
            "others": {"share": 0.05, "low": 0.0, "high": 0.1},
            "twin": {"share": twin_share, "low": twin_share - 0.2, "high": twin_share + 0.1},
            "base": {"share": 0.1, "low": 0.0, "high": 0.2},
            "reliable": True,
            "verdict": "closer to you than the base: yes",
            "scale": "the share of replies judged yours",
        },
        "told_apart": {"stylometric": {"twin": {"auc": 0.6, "low": 0.4, "high": 0.8}, "base": None}},
        "stylometrics": {"real": profile, "twin": profile, "base": profile},
        "best": [0],
        "worst": [1],
    }


@pytest.fixture()
def two_twins(tmp_path):
    folders = []
    for rank, share in ((8, 0.5), (16, 0.7)):
        folder = tmp_path / f"rank{rank}"
        folder.mkdir()
        (folder / "evaluation.json").write_text(json.dumps(_evaluation(share)), encoding="utf-8")
        (folder / "lineage.json").write_text(json.dumps({"settings": {"lora_r": rank}}), encoding="utf-8")
        folders.append(folder)
    return folders


def test_report_compares_twins_in_one_self_contained_page(two_twins, tmp_path, isolated_user_dirs, capsys):
    out = tmp_path / "report.html"
    args = ["judge", "report", "--adapter", str(two_twins[0]), "--adapter", str(two_twins[1]), "--out", str(out)]
    assert main(args) == 0
    page = out.read_text(encoding="utf-8")
    assert "rank 8" in page and "rank 16" in page and "closer to you than the base: yes" in page
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(images) >= 6
    assert all(base64.b64decode(image).startswith(b"<svg") for image in images)
    assert not re.search(r"(src|href)=\"(https?:|//)", page)  # nothing fetched: it opens offline
    assert "omg yes lol" in page and "Certainly, I will be there." in page


def test_a_missing_evaluation_says_how_to_make_one(tmp_path, isolated_user_dirs, capsys):
    assert main(["judge", "report", "--adapter", str(tmp_path), "--out", str(tmp_path / "r.html")]) != 0
    assert "evaluate it first" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_the_report_opens_in_a_real_browser(two_twins, tmp_path, test_output_dir, isolated_user_dirs):
    """Headless Chromium renders the page; the screenshot (kept in the test output folder) shows the charts."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is installed by scripts/setup.sh"
    out = tmp_path / "report.html"
    assert (
        main(["judge", "report", "--adapter", str(two_twins[0]), "--adapter", str(two_twins[1]), "--out", str(out)])
        == 0
    )
    shot = test_output_dir / "judge-report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1000,1800",
            f"--screenshot={shot}",
            f"file://{out}",
        ],
        check=True,
        capture_output=True,
        timeout=WORK_TIMEOUT_S,
    )
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert not image.isNull() and image.width() >= 900
    colours = {image.pixel(x, y) & 0xFFFFFF for x in range(0, image.width(), 5) for y in range(0, image.height(), 5)}
    assert 0x2F6FB0 in colours  # the charts' first bar colour was drawn: the embedded images rendered
