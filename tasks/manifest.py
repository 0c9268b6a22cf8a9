"""The manifest (YAML, version 1): parsing into typed records and validation.

Every problem is collected, each with its field path and what to do, and reported at once
before any GPU work starts.
"""

from __future__ import annotations

import dataclasses
import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nst_engine.config import EngineConfig
from nst_engine.errors import ConfigError

TOP_KEYS = ("version", "name", "output", "cache", "contents", "styles", "pairs", "engine")
IMAGE_KEYS = ("id", "uri", "blend")
PAIR_KEYS = ("content", "style", "engine")
# Safe as a file name, and '--' is reserved as the separator in <content>--<style>.png.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ManifestError(Exception):
    """Every problem found in one manifest; str() names the file, then one line per problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ImageRef:
    id: str
    uris: tuple[str, ...]  # absolute local paths or s3:// URIs
    blend: tuple[float, ...]  # one weight per uri


@dataclass(frozen=True)
class PairSpec:
    content: str
    style: str
    engine: EngineConfig  # top-level engine settings with this pair's overrides


@dataclass(frozen=True)
class Manifest:
    source: str
    name: str
    output: str
    cache: str | None
    contents: tuple[ImageRef, ...]
    styles: tuple[ImageRef, ...]
    engine: EngineConfig
    pairs: tuple[PairSpec, ...]


def with_engine_changes(manifest: Manifest, **changes: Any) -> Manifest:
    """The same manifest with engine settings changed for every pair (e.g. weights=...)."""
    pairs = tuple(dataclasses.replace(p, engine=p.engine.replace(**changes)) for p in manifest.pairs)
    return dataclasses.replace(manifest, engine=manifest.engine.replace(**changes), pairs=pairs)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file; raise ManifestError listing every problem."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(str(path), [Problem("(file)", f"cannot read the manifest: {exc.strerror or exc}")]) from None
    return parse_manifest(text, base_dir=path.resolve().parent, source=str(path))


def parse_manifest(text: str, *, base_dir: Path, source: str) -> Manifest:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(source, [Problem("(yaml)", f"not valid YAML at {where}: {problem}")]) from None
    checker = _Checker(base_dir)
    manifest = checker.manifest(data, source)
    if checker.problems:
        raise ManifestError(source, checker.problems)
    assert manifest is not None
    return manifest


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "true/false", type(None): "nothing"}.get(type(value), type(value).__name__)


class _Checker:
    """Walks the parsed YAML, building records and collecting problems."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[Problem] = []

    def fail(self, field: str, message: str) -> None:
        self.problems.append(Problem(field, message))

    def manifest(self, data: Any, source: str) -> Manifest | None:
        if not isinstance(data, dict):
            self.fail("(top level)", f"must be a mapping with keys {', '.join(TOP_KEYS)}; got {_kind(data)}")
            return None
        for key in data:
            if key not in TOP_KEYS:
                self.fail(str(key), f"unknown key; allowed: {', '.join(TOP_KEYS)}")
        if data.get("version") != 1:
            got = "missing" if "version" not in data else repr(data["version"])
            self.fail("version", f"must be 1 (got {got}); add `version: 1`")
        name = data.get("name")
        if not isinstance(name, str) or not ID_PATTERN.match(name):
            self.fail("name", f"needs a run name of letters, digits, '.', '_' or '-' (got {name!r})")
            name = "run"
        output = self.location(data.get("output", f"out/{name}"), "output")
        cache = self.location(data["cache"], "cache") if data.get("cache") is not None else None
        contents = self.images(data.get("contents"), "contents", allow_blend=False)
        styles = self.images(data.get("styles"), "styles", allow_blend=True)
        engine = self.engine(data.get("engine") or {}, EngineConfig(), "engine")
        pairs = self.pairs(data.get("pairs", "all"), contents, styles, engine)
        return Manifest(source, name, output, cache, contents, styles, engine, pairs)

    def location(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(field, f"must be a folder path or s3:// URI, got {_kind(value)}")
            return ""
        if value.startswith("s3://"):
            return value
        return str((self.base_dir / Path(value).expanduser()).resolve())

    def resolve_file(self, value: Any, field: str) -> list[str]:
        """One local file, the matches of a glob, or an s3:// URI, as absolute strings."""
        if not isinstance(value, str) or not value:
            self.fail(field, f"must be a file path, glob or s3:// URI, got {_kind(value)} {value!r}")
            return []
        if value.startswith("s3://"):
            return [value]
        path = self.base_dir / Path(value).expanduser()
        if GLOB_CHARS.search(value):
            matches = sorted(p for p in glob.glob(str(path)) if Path(p).is_file())
            if not matches:
                self.fail(field, f"the glob {value!r} matches no file (looked in {path.parent})")
            return [str(Path(m).resolve()) for m in matches]
        if not path.is_file():
            self.fail(field, f"no such file {value!r} (looked for {path})")
            return []
        return [str(path.resolve())]

    def images(self, value: Any, field: str, *, allow_blend: bool) -> tuple[ImageRef, ...]:
        if not isinstance(value, list) or not value:
            self.fail(field, f"needs a non-empty list of images, got {_kind(value)}")
            return ()
        refs: list[ImageRef] = []
        seen: dict[str, str] = {}
        for index, item in enumerate(value):
            path = f"{field}[{index}]"
            for ref in self.image(item, path, allow_blend):
                if not ID_PATTERN.match(ref.id) or "--" in ref.id:
                    self.fail(f"{path}.id", f"id {ref.id!r} must be letters, digits, '.', '_' or '-' "
                                            "(no '--', at most 100 characters); set `id:` explicitly")
                elif ref.id in seen:
                    self.fail(f"{path}.id", f"duplicate id {ref.id!r} (also at {seen[ref.id]}); ids must be unique")
                else:
                    seen[ref.id] = path
                    refs.append(ref)
        return tuple(refs)

    def image(self, item: Any, path: str, allow_blend: bool) -> list[ImageRef]:
        if isinstance(item, str):  # a bare path or glob: id = file stem
            return [ImageRef(Path(uri).stem, (uri,), (1.0,)) for uri in self.resolve_file(item, path)]
        if not isinstance(item, dict):
            self.fail(path, f"must be a path or a mapping {{id, uri}}, got {_kind(item)}")
            return []
        allowed = IMAGE_KEYS if allow_blend else IMAGE_KEYS[:2]
        for key in item:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
        image_id = item.get("id")
        if not isinstance(image_id, str):
            self.fail(f"{path}.id", f"needs an id (text), got {_kind(image_id)}")
            return []
        raw_uris = item.get("uri")
        if isinstance(raw_uris, list) and allow_blend:
            uris = [u for i, raw in enumerate(raw_uris) for u in self.resolve_file(raw, f"{path}.uri[{i}]")]
            if not raw_uris:
                self.fail(f"{path}.uri", "needs at least one image")
        else:
            uris = self.resolve_file(raw_uris, f"{path}.uri")
            if len(uris) > 1:
                self.fail(f"{path}.uri", "a glob matched several files; use a bare glob entry or a list")
        blend = self.blend(item.get("blend"), len(raw_uris) if isinstance(raw_uris, list) else 1, path)
        if not uris or len(uris) != len(blend):
            return []
        return [ImageRef(image_id, tuple(uris), blend)]

    def blend(self, value: Any, count: int, path: str) -> tuple[float, ...]:
        if value is None:
            return tuple(1.0 for _ in range(count))
        if (not isinstance(value, list) or len(value) != count
                or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in value)
                or sum(value) <= 0):
            self.fail(f"{path}.blend", f"needs {count} numbers >= 0, not all 0 (one per uri), got {value!r}")
            return ()
        return tuple(float(w) for w in value)

    def engine(self, value: Any, base: EngineConfig, field: str) -> EngineConfig:
        if isinstance(value, dict) and isinstance(value.get("weights"), str):
            value = {**value, "weights": self.weights(value["weights"], f"{field}.weights")}
        try:
            return EngineConfig.from_mapping(value, base=base, where=field)
        except ConfigError as exc:
            for name, message in exc.problems:
                self.fail(name, message)
            return base

    def weights(self, value: str, field: str) -> str:
        if value == "imagenet" or re.match(r"^random(:\d+)?$", value) or value.startswith("s3://"):
            return value
        path = self.base_dir / Path(value).expanduser()
        if not path.is_file():
            self.fail(field, f"no such weights file {value!r} (looked for {path}); "
                             "use imagenet, random[:SEED] or a VGG-19 .pth path")
        return str(path.resolve())

    def pairs(self, value: Any, contents: tuple[ImageRef, ...], styles: tuple[ImageRef, ...],
              engine: EngineConfig) -> tuple[PairSpec, ...]:
        if value == "all":
            return tuple(PairSpec(c.id, s.id, engine) for c in contents for s in styles)
        if not isinstance(value, list):
            self.fail("pairs", f"must be `all` or a list of {{content, style, engine}}, got {_kind(value)}")
            return ()
        known = {"content": {c.id for c in contents}, "style": {s.id for s in styles}}
        specs: list[PairSpec] = []
        seen: dict[tuple[str, str], int] = {}
        for index, item in enumerate(value):
            path = f"pairs[{index}]"
            if not isinstance(item, dict):
                self.fail(path, f"must be a mapping {{content, style}}, got {_kind(item)}")
                continue
            for key in item:
                if key not in PAIR_KEYS:
                    self.fail(f"{path}.{key}", f"unknown key; allowed: {', '.join(PAIR_KEYS)}")
            ok = True
            for role in ("content", "style"):
                ident = item.get(role)
                if ident not in known[role]:
                    shown = ", ".join(sorted(known[role])[:10])
                    self.fail(f"{path}.{role}", f"unknown {role} id {ident!r}; known: {shown}")
                    ok = False
            config = self.engine(item.get("engine") or {}, engine, f"{path}.engine")
            if not ok:
                continue
            key = (item["content"], item["style"])
            if key in seen:
                self.fail(path, f"duplicate pair {key[0]} x {key[1]} (also pairs[{seen[key]}])")
                continue
            seen[key] = index
            specs.append(PairSpec(key[0], key[1], config))
        return tuple(specs)
