"""Reading a manifest's YAML safely: bounded alias expansion, duplicate keys found, line numbers.

A manifest is hand-written YAML, so anchors and aliases (`&fast`, `*fast`, `<<: *fast`) are
allowed, but the document they expand to is bounded: a "billion laughs" alias bomb expands a
1 kB file to 10^9 values (`nst validate` hung, or printed a 52-million-character message).
The bound is checked on the composed node graph, where an alias is one shared node, before
any Python value is built. Pure Python: no Prefect, torch or boto3.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# yaml.safe_load's constructor, through libyaml when present: ~4x faster on big manifests
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"

# Aliases may add up to this many values per value written, plus a flat allowance: ordinary
# reuse (an engine block shared by many pairs) stays far below it, a bomb is far above.
EXPANSION_PER_NODE = 10
EXPANSION_ALLOWANCE = 10_000
_SHOWN_LINES = 5  # alias lines listed in a message


class YamlError(Exception):
    """The text is not a manifest-safe YAML document; str() says where and why."""


def read_yaml(text: str) -> tuple[Any, list[str]]:
    """The document's data, and one message per duplicate key (YAML keeps the last silently).

    Raises YamlError for invalid YAML, an alias inside the value it names, or aliases that
    expand past the bound.
    """
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        duplicates = _check_graph(node, text)
        return loader.construct_document(node), duplicates
    except yaml.YAMLError as exc:
        raise YamlError(_yaml_message(exc)) from None
    finally:
        loader.dispose()


def _check_graph(root: Node, text: str) -> list[str]:
    """Duplicate-key messages; raises YamlError when aliases make the document recursive or
    expand it past the bound (measured only when some collection is shared: most manifests
    have no aliases, and this walk is on the path of every 10,000-pair manifest)."""
    duplicates: list[str] = []
    seen: set[int] = {id(root)}  # collections visited; scalars are leaves, never expanded
    shared = False
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            duplicates += _duplicate_keys(node)
            children = [part for pair in node.value for part in pair]
        else:  # a sequence's items; a scalar document (`hello`) has none
            children = node.value if isinstance(node, SequenceNode) else []
        for child in children:
            if child.__class__ is ScalarNode:
                continue
            if id(child) in seen:
                shared = True  # an alias (or the same anchor reached twice)
                continue
            seen.add(id(child))
            stack.append(child)
    if shared:
        _check_expansion(root, text)
    return duplicates


def _check_expansion(root: Node, text: str) -> None:
    """Count the values the document expands to, each distinct node measured once (iteratively:
    no recursion limit), and refuse a recursive document or one past the bound."""
    expanded: dict[int, int] = {}  # id(node) -> values under it, aliases expanded
    open_nodes: set[int] = set()  # nodes whose children are still being measured
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            continue
        if key in expanded:
            continue  # an alias of a node already measured
        if key in open_nodes:
            raise YamlError(f"an alias refers to the value it is inside (anchored at line "
                            f"{node.start_mark.line + 1}); a manifest cannot be recursive")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    written, total = len(expanded), expanded[id(root)]
    limit = EXPANSION_ALLOWANCE + EXPANSION_PER_NODE * written
    if total > limit:
        lines = _alias_lines(text)
        shown = ", ".join(str(n) for n in lines[:_SHOWN_LINES]) + (", ..." if len(lines) > _SHOWN_LINES else "")
        raise YamlError(f"aliases expand the document to {total} values from {written} written, over the "
                        f"limit of {limit}: {len(lines)} alias(es) (*name) at line(s) {shown}; "
                        "write the values out or use fewer aliases")


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _duplicate_keys(node: MappingNode) -> list[str]:
    """Keys written twice in one mapping (keys merged in by `<<` may be overridden: not duplicates)."""
    if len(node.value) < 2:
        return []
    first: dict[tuple[str, str], int] = {}
    found = []
    for key_node, _ in node.value:
        if key_node.__class__ is not ScalarNode or key_node.tag == _MERGE_TAG:
            continue
        ident = (key_node.tag, key_node.value)
        if ident in first:
            found.append(f"duplicate key {_excerpt(key_node.value)!r} at line {key_node.start_mark.line + 1} "
                         f"(first at line {first[ident]}); YAML would keep only the last: write each key once")
        else:
            first[ident] = key_node.start_mark.line + 1
    return found


def _alias_lines(text: str) -> list[int]:
    """Lines of the aliases (*name): a second, event-level pass, on the error path only."""
    return [event.start_mark.line + 1 for event in yaml.parse(text, Loader=_SAFE_LOADER)
            if isinstance(event, yaml.AliasEvent)]


def _excerpt(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(getattr(exc, "position", None), int):  # ReaderError: a bad character
        where = f"character {exc.position + 1}"  # type: ignore[attr-defined]
    else:
        where = "an unknown position"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"not valid YAML at {where}: {detail}; check indentation, brackets and quoting"


__all__ = ["YamlError", "read_yaml", "EXPANSION_PER_NODE", "EXPANSION_ALLOWANCE"]
