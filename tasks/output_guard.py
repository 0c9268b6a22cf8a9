"""Where the pipeline may write: checks made before any work, so no user's file is replaced.

An output location belongs to the pipeline when it is missing, empty, or holds the pipeline's
marker (OUTPUT_MARKER, written by claim_output when a run starts) or a run.json in the
pipeline's report format. Filesystem roots, the home folder and system folders are never
outputs; the manifest's own folder is one only while it holds nothing but the manifest.
`--allow-non-empty-output` (or the same run option through the API) lets a run write beside a
user's files, never over names the pipeline writes (index.html, run.json, results/, ...). One
output holds one manifest's run: another manifest's is refused (run.json or the marker names it).
`nst stylize` never writes over its inputs, and replaces an existing file only when it made it
(the provenance JSON beside the image says so) or when told to (`overwrite`).

Plain functions over tasks.stores: no Prefect. Each refusal is an OutputRefusedError whose
message names the place, says why, and what to do instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from nst_engine.errors import ImageError
from nst_engine.images import format_for
from tasks.layout import GALLERY_KEY, OUTPUT_MARKER, REPORT_KEY, RESULTS_PREFIX, SHARDS_PREFIX, THUMBS_PREFIX
from tasks.report import is_run_report
from tasks.manifest import Manifest
from tasks.stores import Storage, StorageError, is_local, read_json
from tasks.stores.local import LocalStorage
from tasks.system_folders import refused_folder

MARKER_CONTENT = {"written_by": "nst-pipeline", "purpose": "marks this folder as an nst-pipeline output"}

# What a run writes at the top of its output: a folder holding any of them that is not ours is refused
# even with --allow-non-empty-output (that flag allows other files beside the run, not replacing them).
PIPELINE_NAMES = (OUTPUT_MARKER, GALLERY_KEY, REPORT_KEY, RESULTS_PREFIX, THUMBS_PREFIX, SHARDS_PREFIX)
_SHOWN_ENTRIES = 3  # how many of a folder's entries a refusal names


class OutputRefusedError(Exception):
    """The pipeline must not write there; str() names the place, why, and what to do."""


def check_output_location(storage: Storage, *, manifest: Path | None = None,
                          allow_non_empty: bool = False, name: str | None = None) -> None:
    """Refuse an output location that is not the pipeline's to write (see the module docstring).

    `manifest`: the manifest file, when the run has one (its folder is refused while it holds
    anything else). `allow_non_empty`: the user's explicit consent to write into a non-empty
    folder that is not a pipeline output; roots, home and system folders are refused anyway.
    `name`: the run's manifest name; an output that another manifest's run wrote is refused (its
    run.json and gallery would be taken over, and its rerun would find "nothing to do").
    """
    root = storage.root if isinstance(storage, LocalStorage) else None
    if root is not None:
        _check_local_folder(root)
    if is_pipeline_output(storage):
        owner = output_owner(storage)
        if name is not None and owner is not None and owner != name:
            raise OutputRefusedError(
                f"output {storage.uri} holds the run of the manifest named {owner!r}, not {name!r}: two manifests "
                "in one output would take over each other's run.json and gallery; give this manifest its own "
                f"output (or remove {REPORT_KEY} and {OUTPUT_MARKER} there to hand the folder over)")
        return
    entries = _top_entries(storage)
    if root is not None and manifest is not None and root == manifest.expanduser().resolve().parent:
        others = [e for e in entries if e != manifest.name]
        if others:
            raise OutputRefusedError(
                f"output {root} is the manifest's own folder and holds other files ({_names(others)}); "
                "the pipeline writes index.html, run.json, results/ and thumbs/ there: give a subfolder "
                "such as out/<name> (the default when `output:` is left out)")
        return
    if entries and not allow_non_empty:
        raise OutputRefusedError(
            f"output {storage.uri} is not empty ({_names(entries)}) and is not an nst-pipeline output (no "
            f"{OUTPUT_MARKER} or run.json of this pipeline); give a new or empty folder, or allow writing "
            "into a non-empty folder explicitly (nst run --allow-non-empty-output)")
    ours = sorted({entry.split("/")[0] for entry in entries} & set(PIPELINE_NAMES))
    if ours:  # even with consent: a user's index.html or results/ is never replaced (nor marked ours)
        raise OutputRefusedError(
            f"output {storage.uri} holds {_names(ours)} that this pipeline would write over, and is not an "
            f"nst-pipeline output (no {OUTPUT_MARKER} or run.json of this pipeline); give a new or empty folder")


def local_manifest_path(manifest: Manifest) -> Path | None:
    """The manifest's file when it is a local one (its folder is guarded), else None."""
    return Path(manifest.source) if is_local(manifest.source) else None


def is_pipeline_output(storage: Storage) -> bool:
    """Whether `storage` holds the pipeline's marker or a run.json in its report format."""
    try:
        if storage.exists(OUTPUT_MARKER):
            marker = read_json(storage, OUTPUT_MARKER)
            return isinstance(marker, dict) and all(marker.get(k) == v for k, v in MARKER_CONTENT.items())
        return storage.exists(REPORT_KEY) and is_run_report(read_json(storage, REPORT_KEY))
    except StorageError:
        return False


def output_owner(storage: Storage) -> str | None:
    """The name of the manifest whose run an output holds: its run.json's, else the marker's
    (a run stopped before its report); None when neither says."""
    report = read_json(storage, REPORT_KEY)
    if is_run_report(report):
        return report["name"]  # type: ignore[index]
    marker = read_json(storage, OUTPUT_MARKER)
    return marker["name"] if isinstance(marker, dict) and isinstance(marker.get("name"), str) else None


def claim_output(storage: Storage, name: str | None = None) -> None:
    """Mark `storage` as this pipeline's output (before the first result is written), so a run
    stopped before its run.json still finds its folder its own next time; `name`: the manifest's."""
    if not storage.exists(OUTPUT_MARKER):
        marker = {**MARKER_CONTENT, **({"name": name} if name else {})}
        storage.write(OUTPUT_MARKER, (json.dumps(marker) + "\n").encode(), content_type="application/json")


def report_is_current(storage: Storage, name: str) -> bool:
    """Whether the output's run.json and gallery are there and this manifest's: when not, a rerun
    with nothing left to stylize still writes them (a lost run.json, a gallery never written)."""
    try:
        report = read_json(storage, REPORT_KEY)
        return is_run_report(report) and report["name"] == name and storage.exists(GALLERY_KEY)  # type: ignore[index]
    except StorageError:
        return False


def check_stylize_output(image: Path, provenance: Path, inputs: Sequence[Path], *, overwrite: bool = False,
                         snapshots: Sequence[Path] = ()) -> None:
    """For `nst stylize`: refuse, before any work, an image format that cannot be written, an
    output that is one of the inputs, and replacing a file the command did not make.

    `provenance` is the JSON written beside `image`. Files it made itself (an image with this
    pipeline's provenance beside it) may be replaced; any other existing file only with `overwrite`.
    `snapshots`: every file `--save-every` may write; never an input, and an existing one only
    when the provenance beside `image` lists it as made by nst stylize (or with `overwrite`).
    """
    made_snapshots = _snapshots_made(image, provenance)
    for snapshot in snapshots:
        for source in inputs:
            if _same_file(snapshot, source):
                raise OutputRefusedError(f"--save-every would write {snapshot}, which is an input ({source}): "
                                         "give another output name, or another --save-every")
    foreign = [str(p) for p in snapshots if (p.exists() or p.is_symlink()) and p.name not in made_snapshots]
    if foreign and not overwrite:
        raise OutputRefusedError(f"--save-every would replace {_names(foreign)}, not made by nst stylize; give "
                                 "another output name, or --overwrite to replace them")
    try:
        format_for(image)
    except ImageError as exc:
        raise OutputRefusedError(str(exc)) from None
    if image.is_dir():
        raise OutputRefusedError(f"{image} is a folder; give the output image's file name, e.g. {image / 'out.png'}")
    for written in (image, provenance):
        for source in inputs:
            if _same_file(written, source):
                raise OutputRefusedError(f"{written} is also an input ({source}); the input would be replaced: "
                                         "give another output name")
    existing = [path for path in (image, provenance) if path.exists()]
    if existing and not overwrite and not _made_by_stylize(image, provenance):
        raise OutputRefusedError(f"{_names([str(p) for p in existing])} already exist(s) and were not made by "
                                 "nst stylize; give another output name, or --overwrite to replace them")


# ---- helpers ------------------------------------------------------------------------------
def _check_local_folder(root: Path) -> None:
    """Roots, the home folder and system folders are refused whatever they hold."""
    problem = refused_folder(root, "output")
    if problem:
        raise OutputRefusedError(problem)
    if root.exists() and not root.is_dir():
        raise OutputRefusedError(f"output {root} is a file; give a folder")


def _top_entries(storage: Storage) -> list[str]:
    """What a location holds: a local folder's top-level names (not a walk of a big tree), or
    an object store's keys."""
    if isinstance(storage, LocalStorage):
        try:
            with os.scandir(storage.root) as found:
                return sorted(entry.name for entry in found)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise OutputRefusedError(f"output {storage.root} cannot be listed ({exc.strerror or exc})") from None
    try:
        return storage.list("")
    except StorageError as exc:
        raise OutputRefusedError(f"output {storage.uri} cannot be listed: {exc}") from None


def _names(entries: Sequence[str]) -> str:
    shown = ", ".join(entries[:_SHOWN_ENTRIES])
    return shown + (f" and {len(entries) - _SHOWN_ENTRIES} more" if len(entries) > _SHOWN_ENTRIES else "")


def _same_file(a: Path, b: Path) -> bool:
    """Same file on disk (hard links, case-insensitive file systems) or the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return a.expanduser().resolve() == b.expanduser().resolve()


def _snapshots_made(image: Path, provenance: Path) -> set[str]:
    """The snapshot file names a provenance record beside `image` says nst stylize wrote."""
    if not _made_by_stylize(image, provenance):
        return set()
    try:
        names = json.loads(provenance.read_bytes()).get("snapshots") or []
    except (OSError, ValueError):
        return set()
    return {name for name in names if isinstance(name, str)}


def _made_by_stylize(image: Path, provenance: Path) -> bool:
    """An image with this pipeline's provenance record beside it (build_provenance's keys)."""
    if not (image.is_file() and provenance.is_file()):
        return False
    try:
        record = json.loads(provenance.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"fingerprint", "config_fingerprint", "config", "versions"} <= set(record)


__all__ = ["OUTPUT_MARKER", "OutputRefusedError", "check_output_location", "check_stylize_output", "claim_output",
           "output_owner", "report_is_current",
           "is_pipeline_output"]
