"""Folders the pipeline never writes into as a whole (an output or a cache): filesystem roots,
the home folder, system folders. One rule for `output:`, `cache:` and the run's flags alike.
Pure pathlib: imported by the manifest reader and the output guard."""

from __future__ import annotations

from pathlib import Path

# Never written into, nor anything inside them: the system's own files.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
                "/sys", "/usr", "/var/lib", "/var/log", "/System", "/Library", "/Applications")
# Never an output or cache themselves (their subfolders may be: /tmp/run, /home/me/out).
SYSTEM_FOLDERS = ("/home", "/Users", "/root", "/var", "/opt", "/srv", "/mnt", "/media", "/run", "/tmp",
                  "/snap", "/private", "/private/var", "/private/tmp", "/Volumes")


def refused_folder(root: Path, what: str = "output") -> str | None:
    """Why the resolved folder `root` may not be `what` ("output", "cache"), or None."""
    example = "./out/<name>" if what == "output" else "~/.cache/nst-pipeline"
    if root.parent == root:
        return f"{what} {root} is a filesystem root; give a folder of its own, e.g. {example}"
    if root == home():
        return f"{what} {root} is your home folder; give a folder of its own inside it, e.g. {root / f'nst-{what}'}"
    for folder in SYSTEM_FOLDERS:
        if root in spellings(folder):
            return (f"{what} {root} is a system folder; give a folder of its own inside it or elsewhere, "
                    f"e.g. {root / f'nst-{what}'}")
    for tree in SYSTEM_TREES:
        if any(root == top or top in root.parents for top in spellings(tree)):
            return f"{what} {root} is inside the system folder {tree}; give a folder in your own space, e.g. {example}"
    return None


def spellings(folder: str) -> set[Path]:
    """A system folder as written and as it resolves (/etc is /private/etc on macOS)."""
    path = Path(folder)
    return {path, path.resolve()}


def home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError):  # no HOME and no password entry
        return None


__all__ = ["SYSTEM_FOLDERS", "SYSTEM_TREES", "home", "refused_folder", "spellings"]
