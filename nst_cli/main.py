"""The `nst` command line: `nst stylize`, `nst validate`, `nst run`, `nst deploy`, `nst serve`, `nst notify`,
`nst deploy-shards`, `nst contact-sheet`.

One parser, one entry function (`main`), one path from an error to an exit code (`EXIT_CODES`).
Each command is a function of the parsed arguments in its own module, calling one library
function per step; the layers below never import this package.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import metadata
from typing import Callable, Sequence

from nst_cli import deploy_commands, manifest_commands, output_commands, stylize_command
from nst_cli.errors import CliError
from nst_engine.errors import EngineError
from tasks.manifest import ManifestError
from tasks.options import RunOptionsError
from tasks.output_guard import OutputRefusedError
from tasks.run_setup import WeightsUnavailableError
from tasks.stores import StorageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What a user can get wrong, by layer, and the exit code each means. Anything else is a bug
# and keeps its traceback.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (CliError, EXIT_USAGE),  # carries its own code
    (ManifestError, EXIT_FAILED),  # the manifest lists every problem itself
    (RunOptionsError, EXIT_USAGE),
    (OutputRefusedError, EXIT_USAGE),  # an output that is not the pipeline's to write
    (EngineError, EXIT_USAGE),  # a bad engine setting or input image of `nst stylize`
    (StorageError, EXIT_FAILED),  # the output, cache or weights store could not be reached
    (WeightsUnavailableError, EXIT_FAILED),  # the run's VGG-19 weights cannot be had here
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = main_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # bare `nst`: what it can do, not a usage error
        parser.print_help()
        return EXIT_OK
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's usage errors and --help, as a return value
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for handler_ in logging.getLogger().handlers:  # Prefect's records have their own console handler
        handler_.addFilter(lambda record: not record.name.startswith("prefect"))
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except tuple(kind for kind, _ in EXIT_CODES) as exc:
        return report_error(args.command, exc)


def report_error(command: str, exc: BaseException) -> int:
    """Print what went wrong, one way for every command, and return its exit code."""
    code = next(code for kind, code in EXIT_CODES if isinstance(exc, kind))
    if isinstance(exc, CliError):
        code = exc.code
    prefix = "" if isinstance(exc, ManifestError) else f"nst {command}: error: "
    print(f"{prefix}{exc}", file=sys.stderr)
    return code


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nst", description="Neural style transfer, one image or a manifest.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    stylize_command.add_parser(commands)
    manifest_commands.add_parsers(commands)
    deploy_commands.add_parsers(commands)
    output_commands.add_parsers(commands)
    return parser


def package_version() -> str:
    try:
        return metadata.version("nst-pipeline")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown (not installed)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
