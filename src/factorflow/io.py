"""Outputs that appear whole or not at all, and never clobber what they did not create.

`atomic_file(path)` and `atomic_dir(path)` hand out a temporary name in the destination's folder;
when the block finishes, the result is fsynced and renamed onto `path`; when it raises, the
temporary is removed and `path` is untouched. A crash (kill -9, power loss) can leave only a
hidden temporary `.NAME.tmp-PID-*`; the next `atomic_dir` in that folder removes those of
processes that no longer run (not `atomic_file`: that would scan a folder per file written).
Files and folders get the usual permissions (0666 / 0777 less the umask).

An existing destination is replaced only when the caller says so (`replace=True`; the CLI's
`--force`); `check_output` refuses early, before any work is done, and never lets an output be,
lie inside or hold one of the command's inputs, whatever `--force` says.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "finite_json",
    "strict_json",
    "IMAGE_EXTENSIONS",
    "STORAGE_FULL",
    "OutputExistsError",
    "atomic_dir",
    "atomic_file",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
    "fsync_dir",
    "has_content",
    "sweep_stale",
    "tmp_name",
]

log = logging.getLogger(__name__)

# Image files every reader and loader accepts (lower-case suffixes).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# errno values that mean the output's storage cannot take more, whatever is written next.
STORAGE_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)

_counter = itertools.count()
_TMP = re.compile(r"\..+\.tmp-(\d+)-.*")


class OutputExistsError(FileExistsError, ValueError):
    """An output exists and the command was not told to replace it (bad input: exit status 2)."""


def tmp_name(path: Path, suffix: bool = True) -> Path:
    """A hidden, unique temporary name beside `path` that `sweep_stale` recognises."""
    # The suffix stays last: some writers pick the format from it.
    token = f"{next(_counter)}{uuid.uuid4().hex[:6]}"
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{token}{path.suffix if suffix else ''}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def sweep_stale(folder: Path) -> None:
    """Remove the temporaries in `folder` left by processes that no longer run (kill -9, power
    loss): hidden `.NAME.tmp-PID-*` entries whose PID is gone."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for tmp in folder.glob(".*.tmp-*"):
        match = _TMP.fullmatch(tmp.name)
        if match and int(match[1]) != os.getpid() and not _pid_alive(int(match[1])):
            with contextlib.suppress(OSError):
                _remove(tmp)
                log.info("removed %s, left by an interrupted write", tmp)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            _fsync_tree(child)
        fsync_dir(path)
    else:
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _named(exc: OSError, path: Path) -> OSError:
    """The same error, naming the destination instead of the temporary."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, os.strerror(exc.errno), str(path))


def has_content(path: Path) -> bool:
    """A file, or a folder with something in it (an empty folder may be written into)."""
    path = Path(path)
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def _overlap(out: Path, source: Path) -> str | None:
    """How the output `out` and the input `source` overlap ("is", "is inside", "holds"), if so."""
    out, source = out.resolve(), source.resolve()
    if out == source:
        return "is"
    if source in out.parents:
        return "is inside"
    if out in source.parents:
        return "holds"
    return None


def check_output(
    path: Path,
    force: bool,
    option: str = "--out",
    inputs: Sequence[str | os.PathLike | None] = (),
) -> None:
    """Refuse, before any work is done, an output that would clobber something: the current or
    root folder, an input (`inputs`: the command's input paths; the output may be neither one of
    them, nor inside one, nor hold one, even with `force`), or an existing file or non-empty
    folder unless `force`."""
    path = Path(path)
    if path.resolve() == Path.cwd().resolve() or path.resolve() == Path(path.anchor).resolve():
        raise OutputExistsError(f"{option} {path} is the current or root folder: name a new one")
    for source in inputs:
        how = None if source is None else _overlap(path, Path(source))
        if how:
            raise OutputExistsError(
                f"{option} {path} {how} the input {source}: choose another {option}, outside "
                "every input"
            )
    if has_content(path) and not force:
        kind = "folder exists and is not empty" if path.is_dir() else "file exists"
        raise OutputExistsError(
            f"{option} {path}: the {kind} (pass --force to replace it, or choose another)"
        )


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path (same folder, same suffix) to write; rename it onto `path` after.

    replace=False refuses (OutputExistsError) when `path` exists. Errors name `path`."""
    path = Path(path)
    if not replace and has_content(path):
        raise OutputExistsError(f"{path} exists (pass --force to replace it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _named(exc, path.parent) from exc
    tmp = tmp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(errno.ENOENT, "the writer produced no file", str(path))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            _remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | OutputExistsError):
            raise _named(exc, path) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a new temporary folder beside `path`; when the block succeeds it becomes `path`.

    An existing non-empty `path` is an OutputExistsError unless `replace`; it is then swapped out
    only once the new folder is complete, so a crash leaves the old or the new folder, never half
    of one. Errors name `path`."""
    path = Path(path)
    if not replace and has_content(path):
        raise OutputExistsError(
            f"{path} exists and is not empty (pass --force to replace it, or choose another)"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path.parent)
        tmp = tmp_name(path, suffix=False)
        tmp.mkdir()
    except OSError as exc:
        raise _named(exc, path) from exc
    try:
        yield tmp
        _fsync_tree(tmp)
        _swap_in(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            _remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | OutputExistsError):
            raise _named(exc, path) from exc
        raise


def _swap_in(new: Path, target: Path) -> None:
    if not (target.exists() or target.is_symlink()):
        os.replace(new, target)
        fsync_dir(target.parent)
        return
    old = tmp_name(target, suffix=False)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)
        raise
    fsync_dir(target.parent)
    try:
        _remove(old)
    except OSError as exc:
        log.warning("replaced %s but could not delete its old copy %s: %s", target, old, exc)


def finite_json(value):
    """`value` with every NaN and infinity (floats, numpy scalars included) made None, through
    dicts, lists and tuples: strict JSON has no spelling for them."""
    import math

    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def strict_json(value, indent: int | None = 1) -> str:
    """JSON text of `value`, NaN and infinities as null (`finite_json`), ending in a newline."""
    import json

    return json.dumps(finite_json(value), indent=indent, allow_nan=False) + "\n"
