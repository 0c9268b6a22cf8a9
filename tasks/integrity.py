"""What a task decodes is what the plan hashed: input bytes and weights checked against the
sha256 planning recorded.

Planning hashes every input (and the weights) to make the pair's fingerprint and the style
target's cache key; tasks read the bytes again later, maybe minutes later on another machine.
A file replaced in between must not be stylized (or cached) under the old key: the result would
be recorded as done for bytes it was not made from, and every later run sharing the cache would
take the new style as the old one. So each read is hashed and compared; a mismatch fails its
pairs with a reason that says to rerun (the next plan hashes the new bytes).
"""

from __future__ import annotations

import hashlib

from nst_engine.vgg import weights_identity
from tasks.stores import StorageError, read_uri
from tasks.weights import local_weights


class InputChanged(StorageError):
    """An input or the weights changed between planning and the task that reads them."""


def read_checked(uri: str, sha256: str | None) -> bytes:
    """The bytes of `uri`, which must hash to `sha256` (the plan's); no check when it is None."""
    data = read_uri(uri)
    if sha256 is not None:
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise InputChanged(f"{uri} changed since this run planned it (sha256 {found[:12]}..., planned "
                               f"{sha256[:12]}...); nothing was made from it: rerun to plan it again")
    return data


def check_weights(weights: str, planned: str) -> None:
    """Raise InputChanged when the weights `weights` names no longer have the identity planned
    (for a file, the sha256 of its bytes; an s3:// object is fetched again when it changed)."""
    if not planned:
        return
    found = weights_identity(local_weights(weights))
    if found != planned:
        raise InputChanged(f"weights {weights} changed since this run planned it ({found[:19]}..., planned "
                           f"{planned[:19]}...); nothing was made with them: rerun to plan it again")


__all__ = ["InputChanged", "check_weights", "read_checked"]
