"""py-spy profile of a running process, summarised as the functions that take its CPU.

``record`` samples a process without pausing it (``py-spy record --nonblocking --format raw``:
one line per distinct stack, ``frame;frame;… count``); ``summarise`` turns the stacks into the top
functions by *own* time (the frame on top of the stack) and by *total* time (the function anywhere on
the stack), in percent of the samples in which the process was busy (idle threads are not sampled).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

RATE = 100  # samples per second
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def record(pid: int, output: Path, seconds: float) -> subprocess.Popen:
    """Start py-spy on ``pid`` for ``seconds``; wait on the returned process before summarising."""
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "py-spy")
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(RATE), "--format", "raw",
         "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.10/", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['function']} ({path})"


def summarise(path: Path, top: int = 15) -> Dict[str, Any]:
    """Top functions by own and by total share of the busy samples."""
    own: Counter = Counter()
    total: Counter = Counter()
    samples = 0
    if not path.exists():
        return {"samples": 0, "own": [], "total": []}
    for line in path.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        count = int(match["count"])
        frames = [_name(frame) for frame in match["stack"].split(";") if frame]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames[1:]):  # the first frame is the thread itself
            total[name] += count

    def share(counter: Counter, below: float = 1.0) -> List[Tuple[str, float]]:
        if not samples:
            return []
        ranked = [(name, count) for name, count in counter.most_common() if count < below * samples]
        return [(name, round(100 * count / samples, 1)) for name, count in ranked[:top]]

    # the server loop and request handling frames are under (nearly) every sample: left out of "total"
    return {"samples": samples, "own": share(own), "total": share(total, below=0.9)}


def as_text(summary: Dict[str, Any]) -> str:
    lines = [f"{summary['samples']} busy samples at {RATE}/s", "own time:"]
    lines += [f"  {pct:5.1f} %  {name}" for name, pct in summary["own"]]
    lines.append("total time (with callees; frames under ≥ 90 % of the samples left out):")
    lines += [f"  {pct:5.1f} %  {name}" for name, pct in summary["total"]]
    return "\n".join(lines)
