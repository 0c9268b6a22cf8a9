"""Splitting one manifest's pairs into N shards: deterministic, balanced, no shared state.

A shard is written "i/n" with 1 <= i <= n. Every pair belongs to exactly one shard of n, and the
assignment depends only on the pair ids and n, so a rerun (after a worker died) puts each pair in
the same shard again and the fingerprint skip redoes only what is missing. Pure functions: no
Prefect, no torch.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from typing import Callable, Iterable

from tasks import layout

SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A shard spec that is not "i/n" with 1 <= i <= n."""


def parse_shard(text: str) -> tuple[int, int]:
    """"2/4" -> (2, 4). Raises ShardError naming the expected form."""
    match = SHARD_PATTERN.match(text)
    if not match:
        raise ShardError(f"shard {text!r}: expected 'i/n', e.g. '1/4' (1 <= i <= n)")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        raise ShardError(f"shard {text!r}: i must be between 1 and n")
    return index, count


def pair_hash(content_id: str, style_id: str) -> str:
    """The pair's place in the shard order: sha256 of its result name "<content>--<style>"."""
    return hashlib.sha256(layout.pair_name(content_id, style_id).encode()).hexdigest()


def assign_shards(pairs: Iterable[tuple[str, str]], count: int) -> dict[tuple[str, str], int]:
    """Shard number (1..count) of every pair.

    Pairs are ordered by their hash and dealt round-robin, so shard sizes differ by at most one
    (a plain hash-mod-n can leave one shard with most of a small manifest) and the order of the
    manifest does not matter. Editing the manifest may move pairs between shards; that is safe,
    because a pair already done is skipped by its fingerprint wherever it lands.
    """
    if count < 1:
        raise ShardError(f"shard count {count}: must be at least 1")
    ordered = sorted(set(pairs), key=lambda pair: (pair_hash(*pair), pair))
    return {pair: position % count + 1 for position, pair in enumerate(ordered)}


def shard_selector(pairs: Iterable[tuple[str, str]], shard: str) -> Callable[[str, str], bool]:
    """A predicate (content id, style id) -> True for the pairs of `shard` ("i/n")."""
    index, count = parse_shard(shard)
    mine = {pair for pair, number in assign_shards(pairs, count).items() if number == index}
    return lambda content_id, style_id: (content_id, style_id) in mine


def shard_report_key(shard: str) -> str:
    """Where a shard run writes its report, instead of run.json: shards/<i>-of-<n>.json."""
    return layout.shard_report_key(*parse_shard(shard))


def runner_identity() -> dict[str, str]:
    """Where a shard ran: host, process and the GPU(s) it was given (CUDA_VISIBLE_DEVICES)."""
    return {"host": socket.gethostname(), "pid": str(os.getpid()),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
