"""The manifest (YAML, version 1): parsing into typed records and validation.

Every problem is collected, each with its field path and what to do about it, and reported at
once (ManifestError) before any GPU work starts. Pure Python: no Prefect, torch or boto3 at
import time. nst_engine is imported only when a manifest is parsed, because its package
__init__ imports torch (and EngineConfig checks layer names against nst_engine.vgg).
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import math
import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Mapping

from tasks.layout import pair_label
from tasks.manifest_yaml import YamlError, read_yaml

from tasks.stores import (BACKENDS, GLOB_CHARS, ObjectInfo, StorageError, glob_objects, join, object_stem,
                          parent_of, read_uri, scheme_of, split_object, supported_schemes, uri_problem)

if TYPE_CHECKING:
    from nst_engine.config import EngineConfig

MANIFEST_VERSION = 1
TOP_KEYS = ("version", "name", "output", "cache", "contents", "styles", "pairs", "engine")
CONTENT_KEYS = ("id", "uri")
STYLE_KEYS = ("id", "uri", "blend")
PAIR_KEYS = ("content", "style", "engine")
# Safe as a file name; '--' is also refused: it separates the ids in <content>--<style>.png.
# Always fullmatch: `$` also accepts a trailing newline ("photo\n" passed).
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# A run name: the same characters, not starting with '.'.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
# What a glob over an object-store prefix picks up: prefixes often hold other things too
# (markers, sidecar JSON, thumbnails in other formats), so only image names are inputs.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_SHOWN_IDS = 10  # how many known ids an "unknown id" message lists
_SHOWN_PROBLEMS = 100  # how many problems str(ManifestError) lists; .problems holds them all

# Messages quote at most an excerpt of a bad value (an alias bomb once made one 52 million
# characters long); reprlib also stops walking nested values early, so the work is bounded.
_EXCERPT = reprlib.Repr()
_EXCERPT.maxstring = _EXCERPT.maxother = 160
_EXCERPT.maxlist = _EXCERPT.maxtuple = _EXCERPT.maxdict = _EXCERPT.maxset = 4
_EXCERPT.maxlevel = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a manifest: where (a field path) and what to do about it."""

    field: str  # e.g. "styles[2].uri"
    message: str  # what is wrong and how to fix it

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ManifestError(Exception):
    """All problems found in one manifest; str() lists the file then one line per problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"{source}: {count} problem{'' if count == 1 else 's'}"]
        lines += [f"  {p}" for p in self.problems[:_SHOWN_PROBLEMS]]
        if count > _SHOWN_PROBLEMS:  # a 50,000-entry list of bad pairs is not 50,000 lines on screen
            lines.append(f"  ... and {count - _SHOWN_PROBLEMS} more")
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (Prefect may ship it between processes)
        return (type(self), (self.source, self.problems))


@dataclass(frozen=True)
class ImageRef:
    """One content or style: an id and its image(s)."""

    id: str
    uris: tuple[str, ...]  # absolute local paths (as str) or s3:// URIs
    blend: tuple[float, ...]  # one weight per uri; equal weights when not given


@dataclass(frozen=True)
class PairSpec:
    """One output image to make."""

    content: str
    style: str
    engine: EngineConfig  # the effective config: top-level engine + this pair's overrides


@dataclass(frozen=True)
class Manifest:
    """A validated manifest."""

    source: str  # path (or URI) of the manifest file
    name: str
    output: str  # absolute local folder path or s3:// URI
    cache: str | None  # style Gram cache location; None: the caller decides
    contents: tuple[ImageRef, ...]
    styles: tuple[ImageRef, ...]
    engine: EngineConfig  # top-level config
    pairs: tuple[PairSpec, ...]  # expanded; `pairs: all` is every content x style, content-major
    # What the listing of each object-store glob said about the objects it matched (size and
    # ETag), by URI: planning takes their identity from here instead of asking again.
    listed: Mapping[str, ObjectInfo] = field(default_factory=dict, compare=False, repr=False)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file or object (s3://bucket/m.yaml); raise ManifestError
    listing every problem. Relative paths inside resolve against its folder or prefix."""
    source = str(path)
    if scheme_of(source) is not None:
        return _load_object_manifest(source)
    try:
        file = Path(source).expanduser()
    except RuntimeError as exc:  # '~user' that does not exist
        raise ManifestError(source, [Problem("(file)", f"cannot expand the path: {exc}")]) from None
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(source, [Problem("(file)", f"no such file (looked for {file.absolute()}); "
                                                       "check the manifest path")]) from None
    except IsADirectoryError:
        raise ManifestError(source, [Problem("(file)", "is a folder; pass the manifest's .yaml file")]) from None
    except UnicodeDecodeError as exc:
        raise ManifestError(source, [Problem("(file)", f"is not UTF-8 text ({exc.reason} at byte "
                                                       f"{exc.start}); is this the manifest?")]) from None
    except OSError as exc:
        raise ManifestError(source, [Problem("(file)", f"cannot read the manifest: "
                                                       f"{exc.strerror or exc}")]) from None
    return parse_manifest(text, base_dir=file.absolute().parent, source=source)


def _load_object_manifest(source: str) -> Manifest:
    if scheme_of(source) not in BACKENDS:
        raise ManifestError(source, [Problem("(file)", f"only local files and {supported_schemes()} URIs "
                                                       "can be read")])
    try:
        data = read_uri(source)
    except StorageError as exc:
        raise ManifestError(source, [Problem("(file)", f"cannot read the manifest: {exc.detail}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(source, [Problem("(file)", f"is not UTF-8 text ({exc.reason} at byte "
                                                       f"{exc.start}); is this the manifest?")]) from None
    return parse_manifest(text, base_dir=parent_of(source), source=source)


def parse_manifest(text: str, *, base_dir: Path | str, source: str) -> Manifest:
    """Parse and validate manifest text; relative paths resolve against `base_dir` (a folder,
    or an object prefix such as s3://bucket/jobs).

    Raises ManifestError with every problem found.
    """
    try:
        data, duplicates = read_yaml(text)
    except YamlError as exc:
        raise ManifestError(source, [Problem("(yaml)", str(exc))]) from None
    from nst_engine.config import EngineConfig  # here, not at import time: nst_engine imports torch

    checker = _Checker(base_dir, EngineConfig)
    for message in duplicates:  # reported with every other problem, not alone
        checker.fail("(yaml)", message)
    manifest = checker.manifest(data, source)
    if checker.problems or manifest is None:
        raise ManifestError(source, checker.problems)
    return dataclasses.replace(manifest, listed=checker.listed)


def with_engine_changes(manifest: Manifest, **changes: Any) -> Manifest:
    """The same manifest with engine settings changed for every pair (e.g. weights=...)."""
    changed: dict[EngineConfig, EngineConfig] = {}  # pairs share configs: replace each once

    def change(config: EngineConfig) -> EngineConfig:
        if config not in changed:
            changed[config] = config.replace(**changes)
        return changed[config]

    pairs = tuple(dataclasses.replace(p, engine=change(p.engine)) for p in manifest.pairs)
    return dataclasses.replace(manifest, engine=change(manifest.engine), pairs=pairs)


# ---- helpers ------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    """How a YAML value reads to a user: 'a number 3', 'a list [1]', 'nothing'."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"true/false {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"a number {_show(value)}"
    if isinstance(value, str):
        return f"text {_show(value)}"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"a date {value.isoformat()}"
    text = _show(value)
    if isinstance(value, dict):
        return f"a mapping {text}"
    if isinstance(value, list):
        return f"a list {text}"
    return f"{type(value).__name__} {text}"


def _show(value: Any) -> str:
    """repr() of a value as written in the manifest, cut to a short excerpt."""
    return _EXCERPT.repr(value)


def _key(key: Any) -> str:
    """A key as it appears in a field path, cut short."""
    text = str(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _quote_hint(value: Any) -> str:
    """For ids and names YAML read as numbers or dates: how to make them text."""
    if isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool):
        return f"; quote it to make it text: '{value}'"
    return ""


def _number(value: Any) -> float | None:
    """A finite float, or None (nst_engine's rule; imported here because nst_engine imports torch)."""
    from nst_engine.config import finite_number

    return finite_number(value)


class _Checker:
    """Walks the parsed YAML, building records and collecting problems."""

    def __init__(self, base_dir: Path | str, engine_type: type[EngineConfig]) -> None:
        remote = scheme_of(str(base_dir)) is not None
        self.remote_base = str(base_dir) if remote else None  # a manifest read from an object store
        self.base_dir = Path.cwd() if remote else Path(base_dir)
        self.engine_type = engine_type
        self.problems: list[Problem] = []
        self.listed: dict[str, ObjectInfo] = {}
        self._engine_memo: dict[tuple[int, str], tuple[EngineConfig, EngineConfig]] = {}

    def fail(self, field: str, message: str) -> None:
        self.problems.append(Problem(field, message))

    # ---- top level ------------------------------------------------------------------------
    def manifest(self, data: Any, source: str) -> Manifest | None:
        if data is None:
            self.fail("(top level)", "the manifest is empty; start with `version: 1` and `name: ...`")
            return None
        if not isinstance(data, dict):
            self.fail("(top level)", f"expected a mapping with keys {', '.join(TOP_KEYS)}; got {_kind(data)}")
            return None
        for key in data:
            if key not in TOP_KEYS:
                self.fail(_key(key), f"unknown key; allowed: {', '.join(TOP_KEYS)}")
        self.version(data)
        name = self.name(data.get("name"))
        output_value = data.get("output")
        if output_value is None:
            output = self.resolve(f"out/{name}") or ""
        else:
            output = self.location(output_value, "output")
        cache = None if data.get("cache") is None else self.location(data["cache"], "cache")
        contents, content_ids = self.images(data.get("contents"), "contents", CONTENT_KEYS)
        styles, style_ids = self.images(data.get("styles"), "styles", STYLE_KEYS)
        engine_value = data.get("engine")
        engine = self.engine({} if engine_value is None else engine_value, self.engine_type(), "engine")
        pairs_value = data.get("pairs")
        pairs = self.pairs("all" if pairs_value is None else pairs_value, contents, styles,
                           content_ids, style_ids, engine)
        return Manifest(source, name, output, cache, contents, styles, engine, pairs)

    def version(self, data: dict[Any, Any]) -> None:
        if "version" not in data:
            self.fail("version", f"missing; add `version: {MANIFEST_VERSION}` at the top")
            return
        value = data["version"]
        if isinstance(value, bool) or not isinstance(value, int) or value != MANIFEST_VERSION:
            self.fail("version", f"must be {MANIFEST_VERSION}, got {_kind(value)}; "
                                 f"this reader understands version {MANIFEST_VERSION} manifests only")

    def name(self, value: Any) -> str:
        rule = "letters, digits, '.', '_' or '-', not starting with '.', at most 100 characters"
        if value is None:
            self.fail("name", f"missing; add `name: my-run` ({rule})")
        elif not isinstance(value, str):
            self.fail("name", f"expected text, got {_kind(value)}{_quote_hint(value)}")
        elif not NAME_PATTERN.fullmatch(value):
            self.fail("name", f"{_show(value)} is not a safe run name: use {rule}")
        else:
            return value
        return "run"

    # ---- locations ------------------------------------------------------------------------
    def resolve(self, value: str, field: str | None = None) -> str | None:
        """`value` as an absolute location: URIs as given; a relative path against the manifest's
        folder, or its prefix when the manifest itself is on an object store."""
        if scheme_of(value) is not None:
            return value
        if self.remote_base is not None and not value.startswith(("/", "~")):
            try:
                return join(self.remote_base, value)
            except StorageError as exc:
                if field:
                    self.fail(field, str(exc))
                return None
        path = self.local(value, field)
        return None if path is None else str(path)

    def local(self, value: str, field: str | None = None) -> Path | None:
        """An absolute local path for `value` (~ expanded, relative to the manifest folder)."""
        try:
            path = Path(value).expanduser()
        except RuntimeError as exc:
            if field:
                self.fail(field, f"cannot expand {_show(value)}: {exc}")
            return None
        return path if path.is_absolute() else self.base_dir / path

    def location(self, value: Any, field: str) -> str:
        """A folder (output, cache): an absolute local path or an s3:// URI."""
        if not isinstance(value, str):
            self.fail(field, f"expected a local folder or an s3://bucket/prefix URI (text), got {_kind(value)}")
            return ""
        if not value.strip():
            self.fail(field, "is empty; give a local folder or an s3://bucket/prefix URI, or leave it out")
            return ""
        resolved = self.resolve(value, field)
        if resolved is None:
            return ""
        if scheme_of(resolved) is not None:
            problem = uri_problem(resolved, _show(value), want="folder")
            if problem:
                self.fail(field, problem)
                return ""
            return resolved
        path = Path(resolved)
        if path.is_file():
            self.fail(field, f"{_show(value)} is a file ({path}); give a folder")
        return str(path.resolve())

    def files(self, value: Any, field: str) -> list[str] | None:
        """One local file, the sorted matches of a glob, or an s3:// URI; None after a problem."""
        if not isinstance(value, str):
            self.fail(field, f"expected a file path, glob or s3:// URI (text), got {_kind(value)}")
            return None
        if not value.strip():
            self.fail(field, "is empty; give a file path, glob or s3:// URI")
            return None
        resolved = self.resolve(value, field)
        if resolved is None:
            return None
        scheme = scheme_of(resolved)
        if scheme is not None:
            problem = uri_problem(resolved, _show(value), want="object")
            if problem:
                self.fail(field, problem)
                return None
            if GLOB_CHARS.search(split_object(resolved)[1]):
                return self.object_glob(value, resolved, field)
            return [resolved]
        path = self.local(value, field)
        if path is None:
            return None
        if GLOB_CHARS.search(value):
            expanded = Path(value).expanduser()
            pattern = str(expanded) if expanded.is_absolute() else os.path.join(
                glob.escape(str(self.base_dir)), str(expanded))  # the folder's own name is no glob
            matches = sorted(m for m in glob.glob(pattern, recursive=True) if os.path.isfile(m))
            if not matches:
                self.fail(field, f"the glob {_show(value)} matches no file (looked for {path})")
                return None
            return [str(Path(m).resolve()) for m in matches]
        if path.is_file():
            return [str(path.resolve())]
        if path.is_dir():
            self.fail(field, f"{_show(value)} is a folder ({path}); name a file, or a glob like "
                             f"'{value.rstrip('/')}/*.jpg'")
        else:
            self.fail(field, f"no such file {_show(value)} (looked in {path.parent})")
        return None

    def object_glob(self, value: str, pattern: str, field: str) -> list[str] | None:
        """The image objects a glob over an object-store prefix matches (one paginated listing)."""
        where = value if value == pattern else f"{value} ({pattern})"
        try:
            matches = glob_objects(pattern)
        except StorageError as exc:
            self.fail(field, f"cannot list the glob {where!r}: {exc.detail}")
            return None
        images = [(uri, info) for uri, info in matches if PurePosixPath(info.key).suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            others = f" ({len(matches)} matched, none an image)" if matches else ""
            self.fail(field, f"the glob {where!r} matches no image{others}; images are named "
                             f"{', '.join('*' + s for s in IMAGE_SUFFIXES)}")
            return None
        self.listed.update(images)
        return [uri for uri, _ in images]

    # ---- contents and styles --------------------------------------------------------------
    def images(self, value: Any, field: str, keys: tuple[str, ...]) -> tuple[tuple[ImageRef, ...], set[str]]:
        """The image records, and every id declared (even by an entry with problems)."""
        declared: set[str] = set()
        if value is None:
            self.fail(field, f"missing; add a list of images, e.g. `{field}: [photos/*.jpg]`")
            return (), declared
        if not isinstance(value, list):
            self.fail(field, f"expected a list of images (paths, globs or {{id, uri}}), got {_kind(value)}")
            return (), declared
        if not value:
            self.fail(field, "is empty; list at least one image")
            return (), declared
        refs: list[ImageRef] = []
        seen: dict[str, str] = {}
        for index, item in enumerate(value):
            path = f"{field}[{index}]"
            for ident, ref, where in self.image(item, path, keys):
                declared.add(ident)
                if ident in seen:
                    self.fail(f"{path}.id", f"duplicate id {_show(ident)}{where} (also at {seen[ident]}); "
                                            f"ids must be unique within {field}")
                    continue
                seen[ident] = path
                if ref is not None:
                    refs.append(ref)
        return tuple(refs), declared

    def image(self, item: Any, path: str, keys: tuple[str, ...]) -> list[tuple[str, ImageRef | None, str]]:
        """(id, record or None after a problem, where the id came from) for one entry."""
        if isinstance(item, str):  # a bare path or glob: one image per file, id = file stem
            uris = self.files(item, path) or []
            found = []
            for uri in uris:
                ident = object_stem(uri)
                if self.valid_id(ident, f"{path}.id", f" (the name of {uri}); rename the file or "
                                                       "list it as {id: ..., uri: ...}"):
                    found.append((ident, ImageRef(ident, (uri,), (1.0,)), f" from {uri}"))
            return found
        if not isinstance(item, dict):
            self.fail(path, f"expected a path, glob or a mapping {{{', '.join(keys)}}}, got {_kind(item)}")
            return []
        for key in item:
            if key not in keys:
                hint = " (blend is for styles only)" if key == "blend" else ""
                self.fail(f"{path}.{_key(key)}", f"unknown key{hint}; allowed: {', '.join(keys)}")
        ident = item.get("id")
        ok_id = True
        if ident is None:
            self.fail(f"{path}.id", "missing; give each image mapping an id (letters, digits, '.', '_', '-')")
            ok_id = False
        elif not isinstance(ident, str):
            self.fail(f"{path}.id", f"expected text, got {_kind(ident)}{_quote_hint(ident)}")
            ok_id = False
        else:
            ok_id = self.valid_id(ident, f"{path}.id", "")
        uris, count = self.uris(item, path, blend_allowed="blend" in keys)
        blend = self.blend(item, path, count) if "blend" in keys else (1.0,)
        if not ok_id:
            return []
        if uris is None or blend is None:
            return [(ident, None, "")]
        return [(ident, ImageRef(ident, tuple(uris), blend), "")]

    def valid_id(self, ident: str, field: str, suffix: str) -> bool:
        if ID_PATTERN.fullmatch(ident) and "--" not in ident:
            return True
        self.fail(field, f"id {_show(ident)} is not safe as a file name{suffix}: use letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit, no '--', at most 100 characters")
        return False

    def uris(self, item: dict[Any, Any], path: str, *, blend_allowed: bool) -> tuple[list[str] | None, int]:
        """The resolved uris of a mapping entry (None after a problem) and how many were given."""
        field = f"{path}.uri"
        if "uri" not in item or item["uri"] is None:
            self.fail(field, "missing; give a file path, glob or s3:// URI")
            return None, 1
        raw = item["uri"]
        if isinstance(raw, list):
            if not blend_allowed:
                self.fail(field, "a list of images is only allowed in styles (blended); give one path")
                return None, len(raw)
            if not raw:
                self.fail(field, "is an empty list; give at least one image")
                return None, 0
            uris: list[str] | None = []
            for index, one in enumerate(raw):
                found = self.files(one, f"{field}[{index}]")
                if found is not None and len(found) > 1:
                    self.fail(f"{field}[{index}]", f"the glob {_show(one)} matched {len(found)} files; each entry "
                                                   "of a uri list must be one image")
                    found = None
                if found is None or uris is None:
                    uris = None
                else:
                    uris.extend(found)
            return uris, len(raw)
        found = self.files(raw, field)
        if found is not None and len(found) > 1:
            self.fail(field, f"the glob {_show(raw)} matched {len(found)} files; an entry with an id is one image: "
                             "use a bare glob entry (id = file stem) or a list")
            return None, 1
        return found, 1

    def blend(self, item: dict[Any, Any], path: str, count: int) -> tuple[float, ...] | None:
        field = f"{path}.blend"
        value = item.get("blend")
        if value is None:
            return tuple(1.0 for _ in range(max(count, 1)))  # equal weights (normalised downstream)
        if not isinstance(item.get("uri"), list):
            self.fail(field, "blend weights need a list uri (one weight per image); "
                             "write `uri: [a.jpg, b.jpg]` or drop blend")
            return None
        if not isinstance(value, list):
            self.fail(field, f"expected a list of {count} numbers (one per uri), got {_kind(value)}")
            return None
        weights = [_number(w) for w in value]
        if any(w is None or w < 0 for w in weights):
            self.fail(field, f"weights must be numbers >= 0, got {_show(value)}")
            return None
        if len(weights) != count:
            self.fail(field, f"needs {count} weight(s), one per uri, got {len(weights)}")
            return None
        if sum(weights) <= 0:  # type: ignore[arg-type]
            self.fail(field, "weights are all 0; give at least one a positive weight")
            return None
        return tuple(float(w) for w in weights)  # type: ignore[arg-type]

    # ---- engine ---------------------------------------------------------------------------
    def engine(self, value: Any, base: EngineConfig, where: str) -> EngineConfig:
        """Validate engine settings over `base`; on problems, report them and return `base`."""
        if isinstance(value, dict) and isinstance(value.get("weights"), str):
            value = {**value, "weights": self.weights(value["weights"], f"{where}.weights")}
        memo_key = None
        if isinstance(value, dict):
            memo_key = (id(base), repr(value))  # pairs often repeat the same overrides
            if memo_key in self._engine_memo:
                return self._engine_memo[memo_key][1]
        from nst_engine.errors import ConfigError

        try:
            config = self.engine_type.from_mapping(value, base=base, where=where)
        except ConfigError as exc:
            for name, message in exc.problems:
                self.fail(name, message)
            return base
        if memo_key is not None:
            self._engine_memo[memo_key] = (base, config)  # holding base keeps its id unique
        return config

    def weights(self, value: str, field: str) -> str:
        """original, imagenet, random[:SEED] (EngineConfig checks its form) and URIs are kept; a local path
        must exist (made absolute)."""
        if scheme_of(value) is not None:
            problem = uri_problem(value, _show(value), want="object")
            if problem:
                self.fail(field, problem)
            return value
        from nst_engine.config import asks_for_random_weights  # here, not at import time: torch

        if value in ("original", "imagenet") or asks_for_random_weights(value):
            return value
        if not value:
            return value  # EngineConfig reports the empty value
        resolved = self.resolve(value, field)
        if resolved is not None and scheme_of(resolved) is not None:  # relative, in a manifest on S3
            return resolved
        path = self.local(value, field)
        if path is None:
            return value
        if not path.is_file():
            self.fail(field, f"no such weights file {_show(value)} (looked in {path.parent}); "
                             "use original, imagenet, random[:SEED] or the path of a VGG-19 state dict")
            return value
        return str(path.resolve())

    # ---- pairs ----------------------------------------------------------------------------
    def pairs(self, value: Any, contents: tuple[ImageRef, ...], styles: tuple[ImageRef, ...],
              content_ids: set[str], style_ids: set[str], engine: EngineConfig) -> tuple[PairSpec, ...]:
        if value == "all":  # one shared config: 10,000 pairs cost 10,000 small tuples
            return tuple(PairSpec(c.id, s.id, engine) for c in contents for s in styles)
        if not isinstance(value, list):
            self.fail("pairs", f"expected `all` or a list of {{content, style, engine}}, got {_kind(value)}")
            return ()
        if not value:
            self.fail("pairs", "is an empty list; use `all` (every content x style) or list some pairs")
            return ()
        valid = {"content": {c.id for c in contents}, "style": {s.id for s in styles}}
        declared = {"content": content_ids, "style": style_ids}
        specs: list[PairSpec] = []
        seen: dict[tuple[str, str], int] = {}
        for index, item in enumerate(value):
            path = f"pairs[{index}]"
            if not isinstance(item, dict):
                self.fail(path, f"expected a mapping {{content: id, style: id}}, got {_kind(item)}")
                continue
            for key in item:
                if key not in PAIR_KEYS:
                    self.fail(f"{path}.{_key(key)}", f"unknown key; allowed: {', '.join(PAIR_KEYS)}")
            ok = True
            for role in ("content", "style"):
                ident = item.get(role)
                if ident is None:
                    self.fail(f"{path}.{role}", f"missing; name a {role} id")
                    ok = False
                elif not isinstance(ident, str):
                    self.fail(f"{path}.{role}", f"expected a {role} id (text), got {_kind(ident)}"
                                                f"{_quote_hint(ident)}")
                    ok = False
                elif ident not in declared[role]:
                    known = sorted(declared[role])
                    shown = ", ".join(known[:_SHOWN_IDS]) + (f", ... ({len(known)} in all)"
                                                             if len(known) > _SHOWN_IDS else "")
                    self.fail(f"{path}.{role}", f"unknown {role} id {_show(ident)}; known: {shown or 'none'}")
                    ok = False
                elif ident not in valid[role]:
                    ok = False  # declared by an entry that has its own problems, reported there
            overrides = item.get("engine")
            config = engine if overrides is None else self.engine(overrides, engine, f"{path}.engine")
            if not ok:
                continue
            key = (item["content"], item["style"])
            if key in seen:
                self.fail(path, f"duplicate pair {pair_label(*key)} (also pairs[{seen[key]}]); list each once")
                continue
            seen[key] = index
            specs.append(PairSpec(key[0], key[1], config))
        return tuple(specs)


__all__ = ["ImageRef", "Manifest", "ManifestError", "PairSpec", "Problem", "load_manifest",
           "parse_manifest", "with_engine_changes"]
