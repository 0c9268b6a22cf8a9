"""The benchmark manifest: the demo's 3 photos x 2 styles with random weights."""

from __future__ import annotations

from pathlib import Path

DEMO = Path(__file__).parents[1] / "examples" / "demo" / "images"
RESULTS = Path(__file__).parent / "results"
CONTENTS = ["astronaut", "chelsea", "coffee"]
STYLES = ["hubble", "brick"]


def manifest_text(name: str, size: int, iterations: int) -> str:
    contents = "\n".join(f"  - {DEMO / c}.jpg" for c in CONTENTS)
    styles = "\n".join(f"  - {DEMO / s}.jpg" for s in STYLES)
    return (f"version: 1\nname: {name}\noutput: out\ncache: cache\ncontents:\n{contents}\nstyles:\n{styles}\n"
            f"engine: {{size: {size}, iterations: {iterations}, weights: 'random:0'}}\n")
