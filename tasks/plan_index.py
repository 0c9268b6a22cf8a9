"""What planning learned from bytes, kept by cheap identity so the next run need not read them.

Planning needs each input's sha256 (a pair's fingerprint hashes the input bytes) and upright
size (for batching), and each finished result's fingerprint (held in its provenance). Reading
them costs every input's bytes and one GET per result: a nightly run over 10,000 photos of which
10 are new would download all 10,000 to learn that 9,990 are done.

This index keeps those facts keyed by what a listing or a stat gives for free: (version, size),
the ETag on S3, inode + mtime + ctime locally (tasks/stores/base.py ObjectInfo). An entry is used
only while the object still shows the identity it was recorded under; any other object is read
again and re-recorded. So the index may be stale, lost, raced or deleted and a result is still
never skipped wrongly: the worst case is reading bytes again.

Why this design rather than a fingerprint keyed on ETags: fingerprints stay the sha256 of the
bytes, so the same photo on disk, on S3, single-part or multipart, gives the same results key;
results made before this index existed stay valid; and re-uploading identical bytes (new ETag)
costs one read, not a redone pair.

It lives beside the style Gram matrices (derived data, safe to delete), one object per output:
`plan-index/<sha256(output uri)[:32]>.json.gz`, gzip'd JSON (hex digests halve).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any, Iterable

from tasks.stores import ObjectInfo, Storage, StorageError, open_storage

log = logging.getLogger(__name__)

INDEX_FORMAT = 1  # bump when what an entry means changes (e.g. new rules for inspecting inputs)
INDEX_PREFIX = "plan-index"
# ~150 bytes an entry: 64 MiB holds some 400,000 inputs and results; beyond it the index is ignored.
MAX_INDEX_BYTES = 64 * 2**20


@dataclass(frozen=True)
class KnownInput:
    """An input's facts as last read: the sha256 of its bytes and its upright (width, height)."""

    sha256: str
    size: tuple[int, int]


def index_key(output_uri: str) -> str:
    return f"{INDEX_PREFIX}/{hashlib.sha256(output_uri.encode()).hexdigest()[:32]}.json.gz"


def _same(entry: dict[str, Any], info: ObjectInfo) -> bool:
    return entry.get("v") == info.version and entry.get("n") == info.size


class PlanIndex:
    """input URI -> KnownInput and result pair -> fingerprint, each under the identity it was read at."""

    def __init__(self, store: Storage | None, key: str, data: dict[str, Any] | None = None,
                 loaded: ObjectInfo | None = None) -> None:
        self.store, self.key = store, key
        self.loaded = loaded  # the stored index this one was read from, if any
        data = data if isinstance(data, dict) and data.get("format") == INDEX_FORMAT else {}
        self.inputs: dict[str, dict[str, Any]] = dict(data.get("inputs") or {})
        self.results: dict[str, dict[str, Any]] = dict(data.get("results") or {})
        self._recorded: dict[str, set[str]] = {"inputs": set(), "results": set()}
        self._forgotten: dict[str, set[str]] = {"inputs": set(), "results": set()}
        self.changed = False

    @classmethod
    def open(cls, cache_uri: str, output_uri: str) -> "PlanIndex":
        """The index of `output_uri` kept in the store at `cache_uri`; empty when there is none
        yet, or it cannot be read (then planning reads what it needs, as without an index)."""
        key = index_key(output_uri)
        try:
            store = open_storage(cache_uri)
        except StorageError as exc:
            log.warning("no plan index (%s): planning reads every input", exc)
            return cls(None, key)
        return cls(store, key, *_load(store, key))

    @classmethod
    def empty(cls) -> "PlanIndex":
        """An index that remembers nothing and is never saved."""
        return cls(None, "")

    # ---- inputs -----------------------------------------------------------------------------
    def input(self, uri: str, info: ObjectInfo) -> KnownInput | None:
        entry = self.inputs.get(uri)
        if entry is None or not _same(entry, info):
            return None
        return KnownInput(entry["sha256"], (int(entry["w"]), int(entry["h"])))

    def record_input(self, uri: str, info: ObjectInfo, known: KnownInput) -> None:
        self.inputs[uri] = {"v": info.version, "n": info.size, "sha256": known.sha256,
                            "w": known.size[0], "h": known.size[1]}
        self._recorded["inputs"].add(uri)
        self.changed = True

    # ---- results ----------------------------------------------------------------------------
    def fingerprint(self, pair: str, provenance: ObjectInfo, image: ObjectInfo | None = None) -> str | None:
        """The fingerprint the provenance object holds, if it is still the one recorded (and, given
        `image`, the image is still the one checked against it when it was recorded)."""
        entry = self.results.get(pair)
        if entry is None or not _same(entry, provenance):
            return None
        if image is not None and (entry.get("iv"), entry.get("in")) != (image.version, image.size):
            return None
        return entry["fingerprint"]

    def record_result(self, pair: str, provenance: ObjectInfo, fingerprint: str,
                      image: ObjectInfo | None = None) -> None:
        """`image`: the image's identity when it was checked against the provenance (size, sha256)."""
        self.results[pair] = {"v": provenance.version, "n": provenance.size, "fingerprint": fingerprint,
                              **({"iv": image.version, "in": image.size} if image is not None else {})}
        self._recorded["results"].add(pair)
        self.changed = True

    def forget_except(self, *, inputs: Iterable[str] | None = None, results: Iterable[str] | None = None) -> None:
        """Drop entries of inputs no longer in the manifest and of results no longer in the output."""
        for name, keep in (("inputs", inputs), ("results", results)):
            if keep is None:
                continue
            wanted, table = set(keep), getattr(self, name)
            for gone in [entry for entry in table if entry not in wanted]:
                del table[gone]
                self._forgotten[name].add(gone)
                self.changed = True

    def save(self) -> None:
        """Write the index when it changed. Entries another run saved meanwhile are kept unless
        this run recorded the same name (each entry is checked against its identity on use, so
        keeping either is safe). A failed write is logged: the index is only a shortcut."""
        if self.store is None or not self.changed:
            return
        try:  # a HEAD: the stored index is read again only when another run replaced it meanwhile
            current: ObjectInfo | None = self.store.stat(self.key)
        except StorageError:
            current = None
        unchanged = current == self.loaded if current is None or self.loaded is None else \
            (current.version, current.size) == (self.loaded.version, self.loaded.size)
        stored = PlanIndex(None, self.key) if unchanged else PlanIndex(None, self.key, *_load(self.store, self.key))
        for table in ("inputs", "results"):
            ours, theirs = getattr(self, table), getattr(stored, table)
            decided = self._recorded[table] | self._forgotten[table]
            for name, entry in theirs.items():
                if name not in ours and name not in decided:
                    ours[name] = entry
        data = {"format": INDEX_FORMAT, "inputs": self.inputs, "results": self.results}
        try:
            self.store.write(self.key, gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0),
                             content_type="application/gzip")
            self.changed = False
            self.loaded = self.store.stat(self.key)  # a second save in this run (after the batches)
        except StorageError as exc:
            log.warning("could not save the plan index: %s", exc)


def _load(store: Storage, key: str) -> tuple[dict[str, Any] | None, ObjectInfo | None]:
    """The stored index and the version read; (None, None) when missing or not what we write."""
    try:
        if store.stat(key).size > MAX_INDEX_BYTES:  # not read at all: no index of ours is that big
            raise ValueError("too big")
        data, info = store.read_versioned(key)
        return json.loads(_inflate(data)), info
    except (StorageError, OSError, ValueError, zlib.error) as exc:  # missing, or not what we wrote: start afresh
        if not isinstance(exc, StorageError):
            log.warning("plan index %s ignored (%s): planning reads what it needs", key, exc)
        return None, None


def _inflate(data: bytes) -> bytes:
    """gunzip with a ceiling: a hostile cache could hold a gzip bomb (kilobytes that inflate to
    gigabytes and kill every run at planning with a MemoryError)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    text = inflater.decompress(data, MAX_INDEX_BYTES + 1)
    if len(text) > MAX_INDEX_BYTES or inflater.unconsumed_tail:
        raise ValueError(f"it inflates past {MAX_INDEX_BYTES // 2**20} MiB")
    return text
