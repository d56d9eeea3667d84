"""Read py-spy's raw (collapsed-stack) output: where the CPU of a run went.

    py-spy record --format raw --subprocesses -o FILE -- COMMAND
    .venv/bin/python bench/pyspy_top.py FILE [--top 20]

Prints the functions that held the most samples, counting a function once per
stack it appears in (its own time and everything it called), as a share of
all samples. bench/migration.py --profile runs this on backfill_paintings.
"""

import argparse
import re
from collections import Counter
from pathlib import Path

# py-spy names a frame "function (path/to/file.py:line)"; the line changes
# within a function, so frames are counted by function and file only.
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3", "/work/", "/"):
        if marker in path:
            path = path.rsplit(marker, 1)[-1] if marker != "/" else path
            break
    return f"{match['function']} ({path})"


def inclusive(lines) -> tuple[Counter, int]:
    counts, total = Counter(), 0
    for line in lines:
        stack, _, samples = line.rstrip("\n").rpartition(" ")
        if not samples.isdigit():
            continue
        samples = int(samples)
        total += samples
        for name in {frame_name(frame) for frame in stack.split(";")[1:]}:  # the first frame is the process
            counts[name] += samples
    return counts, total


def top_lines(path: Path, top: int = 20, *, within: str = "") -> list[str]:
    counts, total = inclusive(path.read_text().splitlines())
    chosen = [(name, samples) for name, samples in counts.most_common() if within in name][:top]
    return [f"{samples / max(total, 1):6.1%}  {name}" for name, samples in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--within", default="", help="only frames whose name contains this (e.g. migrator/)")
    args = parser.parse_args()
    print("\n".join(top_lines(args.file, args.top, within=args.within)))


if __name__ == "__main__":
    main()
