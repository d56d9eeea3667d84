"""A sample corpus shaped like aesthetic.computer's, for the demo and tests.

``corpus_plan`` is pure and deterministic from a seed: it lays out users,
handles and painting documents with the plan's statistics at scale 1.0
(3,903 paintings; 2,839 by 984 users, 978 with ATProto credentials; 1,064
anonymous; the top user has 384) and plants the edge cases a migration meets.
``render_image`` draws one pixel-art PNG; ``write_images`` draws them all on
every core.
"""

import datetime as dt
import io
import os
import random
import string
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bson import ObjectId
from PIL import Image, ImageDraw

PLAN = {"paintings": 3903, "anonymous": 1064, "users": 984, "blocked_users": 6, "top_user": 384}
CODE_ALPHABET = "bcdfghjklmnpqrstvwxyzaeiou23456789"
WIDE_CODE_ALPHABET = string.ascii_letters + string.digits
FIRST_DAY = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)
LAST_DAY = dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
# Canvas sizes, weighted: mostly phone and laptop screens and small squares,
# a few large ones.
SIZES = [
    ((64, 64), 4), ((128, 128), 8), ((256, 256), 10), ((512, 512), 10), ((390, 844), 10),
    ((800, 600), 8), ((768, 768), 6), ((1024, 1024), 10), ((1280, 720), 8), ((1920, 1080), 12),
    ((1080, 1920), 5), ((2048, 2048), 4), ((3000, 200), 1), ((150, 2400), 1), ((4096, 4096), 2),
]
SYLLABLES = ["ka", "lo", "mi", "nu", "ra", "ze", "po", "ti", "ve", "su", "an", "el", "or", "ix", "ya", "bo", "de", "fu"]


@dataclass(frozen=True)
class ImageJob:
    """One file to write under the images folder."""

    path: str  # relative to the images folder
    width: int
    height: int
    seed: int
    noisy: bool = False
    recording_path: str = ""


@dataclass
class Corpus:
    users: list[dict] = field(default_factory=list)
    handles: list[dict] = field(default_factory=list)
    paintings: list[dict] = field(default_factory=list)
    images: list[ImageJob] = field(default_factory=list)
    planted: dict[str, list[str]] = field(default_factory=dict)

    def plant(self, kind: str, ref) -> None:
        self.planted.setdefault(kind, []).append(str(ref))


def timestamp_slug(when: dt.datetime) -> str:
    """aesthetic.computer's slug: unpadded date and time, padded seconds and
    milliseconds (``2023.8.24.16.21.09.123``)."""
    return (
        f"{when.year}.{when.month}.{when.day}.{when.hour}.{when.minute}."
        f"{when.second:02d}.{when.microsecond // 1000:03d}"
    )


def counts_for(scale: float) -> dict[str, int]:
    counts = {name: round(value * scale) for name, value in PLAN.items()}
    counts["users"] = max(counts["users"], 1 if counts["paintings"] > counts["anonymous"] else 0)
    counts["top_user"] = max(1, min(counts["top_user"], counts["paintings"] - counts["anonymous"] - counts["users"] + 1))
    return counts


def paintings_per_user(total: int, users: int, top: int) -> list[int]:
    """How many paintings each user has, most first: the top user has
    ``top``, everyone has at least one, the rest fall off like a power law."""
    if users == 0:
        return []
    rest = total - top - (users - 1)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(1, users)]
    scale = rest / sum(weights) if weights else 0
    shares = [int(weight * scale) for weight in weights]
    for index in range(rest - sum(shares)):
        shares[index % len(shares)] += 1
    shares = [min(share, top - 1) for share in shares]
    shortfall = rest - sum(shares)
    index = len(shares) - 1
    while shortfall > 0:  # only when the cap bit: spread what it took
        shares[index] += 1
        shortfall -= 1
        index = index - 1 if index > 0 else len(shares) - 1
    return [top] + [share + 1 for share in shares]


def corpus_plan(*, scale: float = 1.0, seed: int = 1, handle_domain: str = ".test") -> Corpus:
    rng = random.Random(seed)
    counts = counts_for(scale)
    corpus = Corpus()
    names = _handle_names(rng, counts["users"])
    codes = _codes(rng, counts["paintings"])
    per_user = paintings_per_user(counts["paintings"] - counts["anonymous"], counts["users"], counts["top_user"])
    blocked = set(range(counts["users"] - counts["blocked_users"], counts["users"]))
    for index, (name, painted) in enumerate(zip(names, per_user, strict=True)):
        sub = f"auth0|{rng.getrandbits(96):024x}"
        user = {"_id": sub, "email": f"{name}@example.test"}
        if index not in blocked:
            user["atproto"] = {
                "handle": f"{name}{handle_domain}",
                "password": "".join(rng.choices(string.ascii_letters + string.digits, k=24)),
                "syncedAt": dt.datetime(2025, 9, 1, tzinfo=dt.UTC),
            }
        corpus.users.append(user)
        corpus.handles.append({"_id": sub, "handle": name})
        for _ in range(painted):
            corpus.paintings.append(_painting(rng, corpus, codes, owner=sub, handle=name))
    for _ in range(counts["anonymous"]):
        corpus.paintings.append(_painting(rng, corpus, codes, owner=None, handle=None))
    _plant_edge_cases(rng, corpus)
    _plant_the_plans_test_painting(corpus)
    return corpus


def _handle_names(rng: random.Random, count: int) -> list[str]:
    names = ["ac25namuc", "jeffrey"][:count]
    taken = set(names)
    while len(names) < count:
        syllables = rng.randint(2, 4)
        name = "".join(rng.choices(SYLLABLES, k=syllables))
        # Four letters can spell a word the PDS reserves ("kaka"); a number
        # never does.
        if syllables == 2 or rng.random() < 0.3:
            name += str(rng.randint(1, 99))
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _codes(rng: random.Random, count: int) -> Iterator[str]:
    """Unique codes: three characters of the lowercase alphabet while they
    last, then four mixed-case ones, as aesthetic.computer does."""
    seen: set[str] = set()
    for _ in range(count):
        length, alphabet = (3, CODE_ALPHABET) if len(seen) < len(CODE_ALPHABET) ** 3 // 4 else (4, WIDE_CODE_ALPHABET)
        code = "".join(rng.choices(alphabet, k=length))
        while code in seen:
            code = "".join(rng.choices(alphabet, k=length))
        seen.add(code)
        yield code


def _object_id(rng: random.Random, when: dt.datetime) -> ObjectId:
    return ObjectId(int(when.timestamp()).to_bytes(4, "big") + rng.randbytes(8))


def _painting(rng, corpus: Corpus, codes, *, owner: str | None, handle: str | None) -> dict:
    span = (LAST_DAY - FIRST_DAY).total_seconds()
    when = FIRST_DAY + dt.timedelta(seconds=rng.random() * span)
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    slug = timestamp_slug(when)
    document = {"_id": _object_id(rng, when), "code": next(codes), "when": when}
    (width, height), = rng.choices([size for size, _ in SIZES], weights=[weight for _, weight in SIZES])
    recording = rng.random() < 0.2
    if owner:
        document.update(user=owner, bucket="user-aesthetic-computer")
        folder = f"media/@{handle}/painting"
        image_path, recording_path = f"{folder}/{slug}.png", f"{folder}/{slug}.zip" if recording else ""
    else:
        document["bucket"] = "art-aesthetic-computer"
        if recording:  # guests keep "imageSlug:recordingSlug"
            recording_slug = timestamp_slug(when - dt.timedelta(seconds=rng.randint(5, 600)))
            slug = f"{slug}:{recording_slug}"
            image_path, recording_path = f"guest/{slug.split(':')[0]}.png", f"guest/{recording_slug}.zip"
        else:
            image_path, recording_path = f"guest/{slug}.png", ""
    document["slug"] = slug
    nuked = rng.random()
    if nuked < 0.03:
        document["nuked"] = True
    elif nuked < 0.5:
        document["nuked"] = False
    corpus.images.append(ImageJob(image_path, width, height, rng.getrandbits(32), recording_path=recording_path))
    return document


def _plant_edge_cases(rng: random.Random, corpus: Corpus) -> None:
    """Missing images, huge noisy images, a duplicate code and malformed
    documents, at fixed places so the same seed plants the same cases."""
    paintings, images = corpus.paintings, corpus.images
    if len(paintings) < 20:
        return
    missing = max(3, len(paintings) // 400)
    picks = rng.sample(range(len(paintings)), k=missing + 5)
    for index in picks[:missing]:
        images[index] = ImageJob("", 0, 0, 0)  # no file: the URL answers 404
        corpus.plant("image_missing", paintings[index]["_id"])
    for index in picks[missing : missing + 3]:
        job = images[index]
        if job.path:  # well over 10 MB: incompressible noise
            images[index] = ImageJob(job.path, 1800, 1800, job.seed, noisy=True, recording_path=job.recording_path)
            corpus.plant("over_10_mb", paintings[index]["_id"])
    first, second = paintings[picks[missing + 3]], paintings[picks[missing + 4]]
    later = max(first, second, key=lambda document: document["_id"])
    later["code"] = min(first, second, key=lambda document: document["_id"])["code"]
    corpus.plant("duplicate_code", later["_id"])
    anonymous = [document for document in paintings if "user" not in document]
    if len(anonymous) >= 10:
        anonymous[1].pop("slug")
        corpus.plant("missing_slug", anonymous[1]["_id"])
        anonymous[2]["when"] = anonymous[2]["when"].isoformat()
        corpus.plant("bad_when", anonymous[2]["_id"])
        anonymous[3]["code"] = "muchtoolongcode"
        corpus.plant("too_long", anonymous[3]["_id"])
        anonymous[4]["slug"] = "../../etc/passwd"
        corpus.plant("bad_slug", anonymous[4]["_id"])


def _plant_the_plans_test_painting(corpus: Corpus) -> None:
    """The plan tests thumbnails with @jeffrey/painting/2023.8.24.16.21.09.123."""
    if not corpus.handles:
        return
    owner = corpus.handles[min(1, len(corpus.handles) - 1)]
    planted = {ref for refs in corpus.planted.values() for ref in refs}
    for index, (document, job) in enumerate(zip(corpus.paintings, corpus.images, strict=True)):
        if document.get("user") == owner["_id"] and job.path and str(document["_id"]) not in planted:
            when = dt.datetime(2023, 8, 24, 16, 21, 9, 123000, tzinfo=dt.UTC)
            tail = document["_id"].binary[4:]
            document.update(_id=ObjectId(int(when.timestamp()).to_bytes(4, "big") + tail), slug=timestamp_slug(when), when=when)
            corpus.images[index] = ImageJob(f"media/@{owner['handle']}/painting/{document['slug']}.png", 1920, 1080, job.seed)
            return


def render_image(job: ImageJob) -> bytes:
    """A pixel-art PNG: a small canvas of flat colours and hard-edged shapes,
    enlarged with nearest-neighbour; or incompressible noise."""
    rng = random.Random(job.seed)
    if job.noisy:
        image = Image.frombytes("RGBA", (job.width, job.height), rng.randbytes(job.width * job.height * 4))
        return _png(image, compress_level=1)
    pixel = max(1, min(16, max(job.width, job.height) // rng.choice([32, 64, 128, 256])))
    small = (max(1, job.width // pixel), max(1, job.height // pixel))
    palette = [tuple(rng.randrange(256) for _ in range(3)) + (255,) for _ in range(rng.randint(3, 12))]
    mode = "RGBA" if rng.random() < 0.15 else "RGB"
    canvas = Image.new(mode, small, palette[0] if mode == "RGB" else (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.randint(3, 14)):
        box = sorted(rng.randrange(small[0]) for _ in range(2)), sorted(rng.randrange(small[1]) for _ in range(2))
        shape = [box[0][0], box[1][0], box[0][1], box[1][1]]
        colour = rng.choice(palette)
        rng.choice([draw.rectangle, draw.ellipse])(shape, fill=colour)
        draw.line([rng.randrange(small[0]), rng.randrange(small[1]), rng.randrange(small[0]), rng.randrange(small[1])], fill=rng.choice(palette), width=1)
    return _png(canvas.resize((job.width, job.height), Image.Resampling.NEAREST))


def _png(image: Image.Image, compress_level: int = 6) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=compress_level)
    return buffer.getvalue()


def _write_one(root: str, job: ImageJob) -> int:
    """Write one image (and its recording); skip files already there, which
    the same seed would draw identically."""
    written = 0
    target = Path(root) / job.path
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".part")
        temporary.write_bytes(render_image(job))
        temporary.rename(target)
        written += 1
    if job.recording_path and not (Path(root) / job.recording_path).exists():
        recording = Path(root) / job.recording_path
        recording.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(recording, "w") as archive:
            archive.writestr("painting.json", f'{{"seed": {job.seed}}}')
    return written


def write_images(root: Path, jobs: list[ImageJob], *, workers: int | None = None) -> int:
    """Write every job's files under ``root`` on ``workers`` processes.
    Returns how many images were drawn (the rest were already there)."""
    jobs = [job for job in jobs if job.path]
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(_write_one, [str(root)] * len(jobs), jobs, chunksize=16))
