"""Sharding a manifest's pairs: deterministic, balanced, each pair in exactly one shard."""

from __future__ import annotations

import pytest

from tasks.shards import ShardError, assign_shards, parse_shard, shard_report_key, shard_selector

PAIRS = [(f"c{i}", f"s{j}") for i in range(7) for j in range(5)]


def test_every_pair_lands_in_exactly_one_shard_of_balanced_size() -> None:
    for count in (1, 2, 3, 4, 35, 40):
        shards = assign_shards(PAIRS, count)
        assert set(shards) == set(PAIRS) and set(shards.values()) <= set(range(1, count + 1))
        sizes = [list(shards.values()).count(n) for n in range(1, count + 1)]
        assert max(sizes) - min(sizes) <= 1
        selected = [pair for n in range(1, count + 1) for pair in PAIRS
                    if shard_selector(PAIRS, f"{n}/{count}")(*pair)]
        assert sorted(selected) == sorted(PAIRS)


def test_the_assignment_depends_on_the_pairs_not_their_order() -> None:
    assert assign_shards(PAIRS, 3) == assign_shards(list(reversed(PAIRS)), 3)


def test_shard_specs_are_checked() -> None:
    assert parse_shard("2/4") == (2, 4) and shard_report_key(" 1 / 3 ") == "shards/1-of-3.json"
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(ShardError, match="expected 'i/n'|between 1 and n"):
            parse_shard(bad)
