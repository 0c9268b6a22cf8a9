"""Storage backends by URI scheme: the one place that knows which schemes exist.

A location is either a local path (no scheme) or `<scheme>://...` served by a backend module.
Everything that takes a location (manifest inputs, output, style cache, weights) asks this
table instead of testing string prefixes; a new backend (say `gs://`) is one module plus one
line in `BACKENDS`. Backends are imported on first use (boto3 only when S3 is used, torch and
Pillow not at all for code that only parses locations, like the manifest reader).
"""

from __future__ import annotations

import importlib
import posixpath
import re
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from tasks.stores.base import ObjectInfo, Storage, StorageError, read_json, write_json

# scheme -> "module:class"; the class takes the URI of a root ("s3://bucket/prefix").
BACKENDS: dict[str, str] = {"s3": "tasks.stores.s3:S3Storage"}
# scheme -> (the bucket names it accepts, that rule in words)
BUCKET_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    # S3's rules: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit,
    # at most 63 characters, no '..', not an IP address. (AWS also asks for 3 characters at least;
    # one-letter names are kept for the placeholders tests and examples use.)
    "s3": (re.compile(r"(?!.*\.\.)(?![0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$)[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?"),
           "use lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, "
           "at most 63 characters"),
}
LOCAL_BACKEND = "tasks.stores.local:LocalStorage"  # paths without a scheme
URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
GLOB_CHARS = re.compile(r"[*?\[]")


def forget_unreachable() -> None:
    """Ask every store again: a new run should not inherit a store found not answering earlier
    in this process (backends not loaded yet have nothing to forget)."""
    for spec in BACKENDS.values():
        module = sys.modules.get(spec.partition(":")[0])
        if module is not None and hasattr(module, "forget_unreachable"):
            module.forget_unreachable()


def scheme_of(location: str) -> str | None:
    """'s3' for 's3://b/k', None for a local path."""
    match = URI_SCHEME.match(location)
    return match.group(1).lower() if match else None


def is_local(location: str) -> bool:
    return scheme_of(location) is None


def supported_schemes() -> str:
    return ", ".join(f"{scheme}://" for scheme in BACKENDS)


def _backend(scheme: str | None) -> Any:
    target = LOCAL_BACKEND if scheme is None else BACKENDS.get(scheme)
    if target is None:
        raise StorageError(f"{scheme}:// is not supported: use a local path or {supported_schemes()}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def uri_problem(location: str, shown: str, *, want: str) -> str | None:
    """What is wrong with a `<scheme>://` location, or None. `want`: "folder" (a bucket, maybe a
    prefix) or "object" (a bucket and a key); `shown` is how to quote the value in the message."""
    scheme = scheme_of(location) or ""
    if scheme not in BACKENDS:
        kind = "folders" if want == "folder" else "paths"
        return f"{shown}: only local {kind} and {supported_schemes()} URIs are supported"
    root, key = split_object(location)
    bucket = root[len(scheme) + 3:]
    if not bucket:
        return f"{shown} names no bucket; write {scheme}://bucket or {scheme}://bucket/prefix"
    if want == "object" and not key:
        return f"{shown} is not an object URI; write {scheme}://bucket/key"
    if {".", ".."} & set(key.split("/")):  # object keys are literal: '..' is no parent folder there
        return (f"{shown} has a '.' or '..' part in its key; object keys are literal (no folders to "
                f"climb): write the key as stored, e.g. {scheme}://{bucket}/{posixpath.normpath(key).lstrip('./')}")
    rule = BUCKET_RULES.get(scheme)
    if rule and not rule[0].fullmatch(bucket):
        return f"bucket name {bucket[:70]!r} is not valid on {scheme.upper()}: {rule[1]}"
    return None


def open_storage(location: str) -> Storage:
    """The storage rooted at a local folder or a `<scheme>://bucket/prefix` URI."""
    return _backend(scheme_of(location))(location)


def split_object(location: str) -> tuple[str, str]:
    """An object's root and key: 's3://b/a/x.jpg' -> ('s3://b', 'a/x.jpg'); '/d/x.jpg' -> ('/d', 'x.jpg')."""
    scheme = scheme_of(location)
    if scheme is None:
        path = Path(location)
        return str(path.parent), path.name
    bucket, _, key = location[len(scheme) + 3:].partition("/")
    return f"{scheme}://{bucket}", key


def read_uri(location: str) -> bytes:
    """The bytes of one input: an absolute local path or an object URI."""
    root, key = split_object(location)
    return open_storage(root).read(key)


def stat_uri(location: str) -> ObjectInfo:
    """One input's size and version without its bytes (os.stat, or a HEAD request)."""
    root, key = split_object(location)
    return open_storage(root).stat(key)


def parent_of(location: str) -> str:
    """The folder or prefix an object sits in: 's3://b/jobs/m.yaml' -> 's3://b/jobs'."""
    if scheme_of(location) is None:
        return str(Path(location).parent)
    root, key = split_object(location)
    folder = posixpath.dirname(key)
    return f"{root}/{folder}" if folder else root


def join(base: str, relative: str) -> str:
    """`relative` (a '/'-separated path) resolved against a folder or an object prefix; '..' may
    not climb out of the bucket."""
    if scheme_of(base) is None:
        return str(Path(base) / relative)
    root, prefix = split_object(base.rstrip("/") + "/x")
    key = posixpath.normpath(posixpath.join(posixpath.dirname(prefix), relative))
    if key == ".." or key.startswith("../"):
        raise StorageError(f"{relative!r} climbs out of {root} (from {base})")
    return root if key == "." else f"{root}/{key}"


def glob_objects(pattern: str) -> list[tuple[str, ObjectInfo]]:
    """The objects an object-store glob matches, as (URI, info) sorted by key, from one paginated
    listing of the literal prefix before the first wildcard. `*` and `?` stay within one path
    segment, `[...]` is a character class, `**/` is any number of folders (as Python's glob)."""
    root, key_pattern = split_object(pattern)
    key_pattern = re.sub(r"/{2,}", "/", key_pattern)
    first = GLOB_CHARS.search(key_pattern)
    literal = key_pattern[:first.start()] if first else key_pattern
    matcher = glob_regex(key_pattern)
    return [(f"{root}/{info.key}", info) for info in open_storage(root).list_objects(literal)
            if not info.key.endswith("/") and matcher.fullmatch(info.key)]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A '/'-aware glob as a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def object_stem(location: str) -> str:
    """The file name without its extension, for local paths and object keys alike."""
    return PurePosixPath(split_object(location)[1]).stem


def absolute(location: str, base_dir: Path | str) -> str:
    """A location as every machine and process will read it: URIs unchanged, local paths with
    ~ expanded and made absolute against `base_dir` (the manifest's folder, or the caller's cwd)."""
    if scheme_of(location) is not None:
        return location
    path = Path(location).expanduser()
    return str((path if path.is_absolute() else Path(base_dir) / path).resolve())


__all__ = ["BACKENDS", "GLOB_CHARS", "ObjectInfo", "Storage", "StorageError", "absolute", "forget_unreachable", "glob_objects",
           "glob_regex", "is_local", "join", "object_stem", "open_storage", "parent_of", "read_json",
           "read_uri", "scheme_of", "split_object", "stat_uri", "supported_schemes", "write_json"]
