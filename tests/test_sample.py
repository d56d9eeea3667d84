"""The sample corpus: the plan's statistics, deterministic, with its edge cases."""

import datetime as dt
import io
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from django.core.management import call_command

from migrator import source
from migrator.models import Transfer
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


@pytest.mark.django_db
def test_the_demo_editor_edits_renames_a_user_and_leaves_the_state_table_seeded_with_what_mongodb_holds(mongo_db, settings, tmp_path):
    settings.SAMPLE_IMAGES_DIR = tmp_path
    call_command("make_sample_data", scale=0.02, seed=1, no_images=True, paintings_only=True, stdout=io.StringIO())
    before = {str(painting["_id"]): painting for painting in mongo_db.paintings.find()}
    handles = {entry["_id"]: entry["handle"] for entry in mongo_db["@handles"].find()}
    for handle in handles.values():
        (tmp_path / "media" / f"@{handle}").mkdir(parents=True)
    out = io.StringIO()

    call_command("edit_sample_paintings", seconds=0.5, every=0, seed_every=10**6, seed=3, stdout=out)  # only its last seed

    renamed = re.search(r"^Renamed @(\S+) to @(renamed-\S+)\.$", out.getvalue(), re.M)
    made = re.search(r"^Made (\d+) edits to (\d+) paintings in MongoDB \((\d+) left deleted\), seeding every 1000000\.$", out.getvalue(), re.M)
    assert renamed and made, out.getvalue()
    assert renamed[2] in {entry["handle"] for entry in mongo_db["@handles"].find()} and renamed[1] in handles.values()
    assert (tmp_path / "media" / f"@{renamed[2]}").resolve() == (tmp_path / "media" / f"@{renamed[1]}").resolve()
    after = {str(painting["_id"]): painting for painting in mongo_db.paintings.find()}
    assert int(made[1]) > 10 and len(after) == len(before) - int(made[3]) == int(made[2])
    assert any(after[ref] != before[ref] for ref in after)  # some fields changed
    rows = {row.ref: row for row in Transfer.objects.filter(kind="painting")}
    for ref, painting in after.items():  # the last seed saw MongoDB as it was left
        if source.is_object_id(ref):
            row = rows[ref]
            assert row.content.get("code") == str(painting.get("code") or "") and row.nuked == (painting.get("nuked") is True), ref
            if isinstance(painting.get("when"), dt.datetime):  # (the corpus plants dates of the wrong type)
                assert row.when == painting["when"], ref
