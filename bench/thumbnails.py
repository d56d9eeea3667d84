"""Benchmark thumbnails alone over the sample corpus.

    .venv/bin/python bench/thumbnails.py [--images DIR] [--workers N] [--limit N]

Reads every PNG under DIR (default var/sample/images, as written by
``manage.py make_sample_data``), makes each thumbnail in a process pool, and
reports thumbnails per second per core, output sizes, how often each fallback
was needed, and failures. No Django, no network: the images are read from disk
so only the thumbnail work is measured.
"""

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from migrator.thumbnails import THUMBNAIL_MAX_BYTES, ThumbnailError, make_thumbnail  # noqa: E402


def thumbnail_one(path: str) -> tuple[str, int, str, str, float, str]:
    """(path, size, mime type, fallback, CPU seconds, error message)."""
    content = Path(path).read_bytes()
    started = time.process_time()
    try:
        thumbnail = make_thumbnail(content)
    except ThumbnailError as error:
        return path, 0, "", "", time.process_time() - started, error.message
    return path, thumbnail.size, thumbnail.mime_type, thumbnail.fallback, time.process_time() - started, ""


def percentile(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=REPO / "var/sample/images", help="folder searched for *.png")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: one per core)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (sorted by path)")
    options = parser.parse_args()

    paths = sorted(str(path) for path in options.images.rglob("*.png"))
    if options.limit:
        paths = paths[: options.limit]
    if not paths:
        sys.exit(f"No PNG files under {options.images}; run `manage.py make_sample_data` first.")
    source_bytes = sum(os.path.getsize(path) for path in paths)
    print(f"{len(paths):,} images ({source_bytes / 1e6:.0f} MB) under {options.images}, {options.workers} worker(s)")

    started = time.perf_counter()
    with ProcessPoolExecutor(options.workers) as pool:
        results = list(pool.map(thumbnail_one, paths, chunksize=8))
    wall = time.perf_counter() - started

    made = [result for result in results if not result[5]]
    failed = [result for result in results if result[5]]
    cpu = [result[4] for result in results]
    sizes = [result[1] for result in made]
    print(f"\nWall time: {wall:.1f} s -> {len(results) / wall:.1f} thumbnails/s on {options.workers} worker(s), "
          f"{len(results) / wall / options.workers:.1f}/s per core")
    print(f"CPU per thumbnail: mean {statistics.mean(cpu) * 1000:.0f} ms, p50 {percentile(cpu, 0.5) * 1000:.0f} ms, "
          f"p95 {percentile(cpu, 0.95) * 1000:.0f} ms, max {max(cpu) * 1000:.0f} ms "
          f"-> {1 / statistics.mean(cpu):.1f} thumbnails/s per core of CPU")
    if sizes:
        print(f"Output size: p50 {percentile(sizes, 0.5):,} B, p95 {percentile(sizes, 0.95):,} B, max {max(sizes):,} B "
              f"(limit {THUMBNAIL_MAX_BYTES:,}); over the limit: {sum(size > THUMBNAIL_MAX_BYTES for size in sizes)}")
    print("\nFallbacks:")
    for fallback, count in Counter(result[3] for result in made).most_common():
        print(f"  {fallback:<20} {count:>6}  {count / len(made):6.1%}")
    print(f"\nFailures: {len(failed)}")
    for message, count in Counter(result[5].split(":")[0] for result in failed).most_common(10):
        print(f"  {count:>6}  {message}")
    print("\nSlowest:")
    for path, size, _, fallback, seconds, error in sorted(results, key=lambda result: -result[4])[:5]:
        print(f"  {seconds * 1000:6.0f} ms  {fallback or 'failed':<18} {Path(path).relative_to(options.images)}")


if __name__ == "__main__":
    main()
