"""One error style for every command line of the project.

    @returns_status
    def main(argv=None) -> int:
        parser = OneLineParser(...); add_debug_flag(parser); args = parser.parse_args(argv)
        with cli_errors(args.debug):
            ...                               # the command's work
        return 0

A problem the user can fix (a bad setting, a missing or damaged file, a path without write access) prints one
``error: …`` message that names it and the fix and exits with status 2; any other failure prints
``failed: …`` and exits with status 1; an interrupt exits with 130. No traceback unless ``--debug`` or
``MH_DEBUG=1``: then the exception propagates unchanged. A malformed command line (``OneLineParser``) is one
``error: …`` line too, with exit status 2.
``returns_status`` makes ``main`` return that status, so tests and notebooks can call it like a function.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import os
import sys

DEBUG_VARIABLE = "MH_DEBUG"
USER_ERROR_EXIT, FAILURE_EXIT, INTERRUPT_EXIT = 2, 1, 130
# ValueError covers bad settings, malformed JSON (JSONDecodeError) and the project's own record errors
# (RunRecordError, BadImageError, DataNotFoundError, …), each raised with a message that names the fix.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, PermissionError)
DEBUG_HINT = f"(--debug or {DEBUG_VARIABLE}=1 shows the traceback)"


class CommandExit(SystemExit):
    """The exit of a command whose error ``cli_errors`` has reported; ``code`` is the exit status."""


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, ``error: <what> (see <prog> --help)``, and exit 2."""

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise CommandExit(USER_ERROR_EXIT)


def add_debug_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--debug", action="store_true", help=f"show the full traceback of an error (also {DEBUG_VARIABLE}=1)"
    )
    return parser


def debug_requested(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def describe(error: BaseException) -> str:
    """The message for ``error``: its own text, made specific for file-system errors."""
    if isinstance(error, PermissionError):
        return (
            f"no permission to {'write' if error.errno == errno.EACCES else 'use'} {error.filename}: "
            "choose a folder you can write to, or fix its permissions"
        )
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return (
            f"the disk is full ({error.filename or 'while writing'}): free space and run again; "
            "files written atomically keep their previous version"
        )
    text = str(error).strip()
    return text if text else type(error).__name__


@contextlib.contextmanager
def cli_errors(debug: bool = False, user_errors: tuple[type[BaseException], ...] = ()):
    """Turn the exceptions of a command's body into one-line messages and exit statuses (module docstring)."""
    try:
        yield
    except KeyboardInterrupt:
        if debug_requested(debug):
            raise
        print("interrupted", file=sys.stderr)
        raise CommandExit(INTERRUPT_EXIT) from None
    except (*USER_ERRORS, *user_errors) as error:
        if debug_requested(debug):
            raise
        print(f"error: {describe(error)}", file=sys.stderr)
        raise CommandExit(USER_ERROR_EXIT) from None
    except Exception as error:
        if debug_requested(debug):
            raise
        print(f"failed: {type(error).__name__}: {describe(error)}\n{DEBUG_HINT}", file=sys.stderr)
        raise CommandExit(FAILURE_EXIT) from None


def returns_status(main):
    """Decorate ``main(argv) -> int`` so that an error reported by ``cli_errors`` returns its exit status."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except CommandExit as exit:
            return exit.code

    return wrapper
