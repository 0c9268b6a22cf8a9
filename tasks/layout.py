"""The layout of a run's output, and the one record of a pair's outcome.

```
<output>/results/<content>--<style>.png    the image
<output>/results/<content>--<style>.json   its provenance (written last: marks the pair done)
<output>/thumbs/<content>--<style>.jpg     the gallery's thumbnail
<output>/thumbs/inputs/<kind>/<id>.jpg      a content's or style's own thumbnail (gallery headers)
<output>/index.html                        the gallery
<output>/run.json                          the run report
<output>/shards/<i>-of-<n>.json            a shard's report (sharded runs)
```
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

RESULTS_PREFIX = "results"
THUMBS_PREFIX = "thumbs"
SHARDS_PREFIX = "shards"
GALLERY_KEY = "index.html"
REPORT_KEY = "run.json"
PAIR_SEPARATOR = "--"  # ids may not contain it (tasks/manifest.py), so names split back uniquely


def pair_name(content_id: str, style_id: str) -> str:
    """The pair in file names: "photo0--art"."""
    return f"{content_id}{PAIR_SEPARATOR}{style_id}"


def pair_label(content_id: str, style_id: str) -> str:
    """The pair as people read it, in task names, logs, the terminal and the UI: "photo0 x art"."""
    return f"{content_id} x {style_id}"


def image_key(content_id: str, style_id: str) -> str:
    return f"{RESULTS_PREFIX}/{pair_name(content_id, style_id)}.png"


def provenance_key(content_id: str, style_id: str) -> str:
    return f"{RESULTS_PREFIX}/{pair_name(content_id, style_id)}.json"


def thumbnail_key(content_id: str, style_id: str) -> str:
    return f"{THUMBS_PREFIX}/{pair_name(content_id, style_id)}.jpg"


INPUT_THUMBS_PREFIX = f"{THUMBS_PREFIX}/inputs"


def input_thumbnail_key(kind: str, ident: str) -> str:
    """kind: "content" or "style"."""
    return f"{INPUT_THUMBS_PREFIX}/{kind}/{ident}.jpg"


def shard_report_key(index: int, count: int) -> str:
    return f"{SHARDS_PREFIX}/{index}-of-{count}.json"


DONE, SKIPPED, FAILED = "done", "skipped", "failed"
STATUSES = (DONE, SKIPPED, FAILED)


@dataclass
class PairOutcome:
    """What became of one pair in a run: done (with losses and seconds), skipped (same
    fingerprint already in the output) or failed (with the reason, naming the input or step).

    Serialised one way (`to_dict`, empty fields left out) into run.json, shard reports, task
    results and the UI's tables; `from_dict` reads it back.
    """

    content: str
    style: str
    status: str  # done | skipped | failed
    reason: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the engine call that made it, measured (see batch_size)
    batch_size: int = 0  # pairs optimised together with it (its batch): one pass cannot be split per pair
    fingerprint: str = ""
    link: str = ""  # where a person opens the image: a file URI, or a presigned URL on S3

    @property
    def name(self) -> str:
        return pair_name(self.content, self.style)

    @property
    def label(self) -> str:
        return pair_label(self.content, self.style)

    def time_text(self) -> str:
        """The measured time as a person should read it: a pair alone, or the batch it shared."""
        if not self.seconds:
            return ""
        if self.batch_size > 1:
            return f"{self.seconds:.1f} s, batch of {self.batch_size}"
        return f"{self.seconds:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in ("", {}, None, 0.0)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PairOutcome":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def failed(cls, content: str, style: str, reason: str) -> "PairOutcome":
        return cls(content, style, FAILED, reason)
