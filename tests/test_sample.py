"""The sample corpus: the plan's statistics, deterministic, with its edge cases."""

import io
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from migrator.sample import ImageJob, corpus_plan, counts_for, render_image, timestamp_slug, write_images

RESERVED_HANDLES = Path(__file__).resolve().parent.parent / "pds/node_modules/@atproto/pds/dist/handle/reserved.js"


def test_scale_one_has_the_plans_statistics():
    corpus = corpus_plan(scale=1.0, seed=1)
    by_owner = Counter(painting["user"] for painting in corpus.paintings if "user" in painting)
    assert len(corpus.paintings) == 3903
    assert sum(by_owner.values()) == 2839 and len(by_owner) == 984
    assert sum("atproto" in user for user in corpus.users) == 978
    assert by_owner.most_common(1)[0][1] == 384


def test_the_same_seed_makes_the_same_corpus_and_another_seed_another():
    first, again, other = corpus_plan(seed=5, scale=0.2), corpus_plan(seed=5, scale=0.2), corpus_plan(seed=6, scale=0.2)
    assert first.paintings == again.paintings and first.users == again.users and first.images == again.images
    assert first.paintings != other.paintings


@pytest.mark.parametrize("scale", [0.01, 0.5, 3])
def test_other_scales_keep_the_proportions(scale):
    counts = counts_for(scale)
    corpus = corpus_plan(scale=scale, seed=2)
    assert len(corpus.paintings) == counts["paintings"]
    assert sum("user" not in painting for painting in corpus.paintings) == counts["anonymous"]


def test_it_plants_the_edge_cases():
    corpus = corpus_plan(scale=1.0, seed=1)
    assert {"image_missing", "over_10_mb", "duplicate_code", "missing_slug", "bad_when", "too_long", "bad_slug"} <= set(corpus.planted)
    nuked = Counter(painting.get("nuked", "absent") for painting in corpus.paintings)
    assert nuked[True] and nuked[False] and nuked["absent"]
    assert any(":" in painting.get("slug", "") for painting in corpus.paintings)  # guest recordings
    assert any(job.recording_path.startswith("media/") for job in corpus.images)  # user recordings
    assert any(painting.get("slug") == "2023.8.24.16.21.09.123" for painting in corpus.paintings)


def test_slugs_look_like_aesthetic_computers():
    import datetime as dt

    assert timestamp_slug(dt.datetime(2023, 8, 24, 16, 21, 9, 123000)) == "2023.8.24.16.21.09.123"


def test_no_sample_handle_is_one_the_pds_reserves():
    if not RESERVED_HANDLES.exists():
        pytest.fail("The local PDS is not installed: run bin/local-pds --install-only (bin/test does).")
    reserved = set(re.findall(r"""['"]([a-z0-9-]+)['"]""", RESERVED_HANDLES.read_text()))
    names = {handle["handle"] for handle in corpus_plan(scale=3, seed=1).handles}
    assert not names & reserved


def test_images_are_pixel_art_at_the_planned_size(tmp_path):
    jobs = [ImageJob("media/@ann/painting/a.png", 640, 480, seed=3, recording_path="media/@ann/painting/a.zip"), ImageJob("guest/b.png", 64, 64, seed=4)]
    assert write_images(tmp_path, jobs, workers=1) == 2
    image = Image.open(tmp_path / "media/@ann/painting/a.png")
    assert image.size == (640, 480)
    assert len(image.getcolors(maxcolors=4096) or []) <= 16  # flat colours, hard edges
    assert (tmp_path / "media/@ann/painting/a.zip").exists()
    assert write_images(tmp_path, jobs, workers=1) == 0  # already there


def test_noisy_images_are_over_ten_megabytes():
    content = render_image(ImageJob("x.png", 1800, 1800, seed=1, noisy=True))
    assert len(content) > 10 * 1024 * 1024
    assert Image.open(io.BytesIO(content)).size == (1800, 1800)
