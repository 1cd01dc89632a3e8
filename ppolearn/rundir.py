"""Run directories that are never lost: the occupied check, the lock, moving a run aside, default names.

* A new run refuses a directory that already holds a run (model.pt, a checkpoint, config.yaml, metrics.csv,
  eval.json, learning_curve.png or tb/). With ``overwrite`` that run is moved aside, whole, to
  ``DIR.old-<N>`` beside it (the lowest N free) and a line says where; nothing is ever deleted.
* The process training into a directory holds an exclusive ``flock`` on ``DIR/.lock``, with its PID written
  inside. The kernel drops the lock when the process ends, however it ends, so a crashed run needs no
  clean-up: ``.lock`` stays behind and means nothing while no process holds it. A second train or resume
  is refused with the holder's PID; readers (eval, plot, render) take no lock. flock locks one open file
  description, so two models in one process exclude each other too. Where fcntl does not exist (Windows)
  or the file system refuses locks, no lock is taken and runs are not guarded against each other.
* Default directories are ``runs/<env>_s<seed>_<N>``, N one above the highest already there (from 1),
  each created by an exclusive mkdir: runs started at the same moment never share one.

Only the process holding a directory writes into it: the learner writes every file; Ray workers write none.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import shlex
import sys
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from ppolearn.checkpoint import list_checkpoints, prepare_run_dir
from ppolearn.errors import PPOLearnError, RunDirError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock (see the module docstring)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
ARTEFACTS = ("model.pt", "metrics.csv", "config.yaml", "eval.json", "learning_curve.png", "tb/")
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}  # a file system without locks: run unguarded
_HELD: weakref.WeakSet[RunDir] = weakref.WeakSet()


class RunDir:
    """A run directory this process holds, until release() or the end of the process.

    Dropping the last reference releases it too; it is a path (``os.fspath``) wherever one is expected.
    """

    def __init__(self, path: Path, fd: Optional[int], moved_to: Optional[Path] = None) -> None:
        self.path = path
        self.moved_to = moved_to  # where overwrite moved the earlier run, if it did
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd) if fd is not None else None
        if fd is not None:
            _HELD.add(self)

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._closer is not None:
            self._closer()  # closes the descriptor once: the kernel drops the lock
        self._fd, self._closer = None, None
        _HELD.discard(self)

    def _forget_in_child(self) -> None:
        """In a forked child: drop the inherited descriptor; the parent keeps its lock."""
        if self._closer is not None and self._closer.detach() is not None:
            os.close(self._fd)  # type: ignore[arg-type]
        self._fd, self._closer = None, None

    def __fspath__(self) -> str:
        return str(self.path)

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r}, locked={self.locked})"


def _forget_all_in_child() -> None:
    for held in list(_HELD):
        held._forget_in_child()
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # forked env workers must not keep a crashed learner's directory locked
    os.register_at_fork(after_in_child=_forget_all_in_child)


def artefacts(path: Union[str, Path]) -> List[str]:
    """What of an earlier run ``path`` holds (empty for a new or unused directory)."""
    path = Path(path)
    found = [name for name in ARTEFACTS if (path / name).exists()]
    if list_checkpoints(path / "checkpoints"):
        found.insert(1 if found[:1] == ["model.pt"] else 0, "checkpoints/")
    return found


def claim(path: Union[str, Path], fresh: bool, overwrite: bool = False) -> RunDir:
    """Create ``path`` if needed, check it is writable, and hold it.

    ``fresh``: a new run starts here, so a directory holding an earlier run is refused, or with
    ``overwrite`` that run is moved aside first. Not fresh: the run in it is being resumed.
    """
    path = prepare_run_dir(path)
    fd = _lock(path)
    try:
        found = artefacts(path) if fresh else []
        if found and not overwrite:
            listed = ", ".join(found[:3] + ["..."] * (len(found) > 3))
            raise RunDirError(
                f"run directory '{path}' already holds a run ({listed}): continue it with --resume "
                f"{shlex.quote(str(path))}, choose another --run-dir, or add --overwrite to move it aside"
            )
        if found:
            moved_to = _move_aside(path)  # the lock goes with it, still held: nobody writes there meanwhile
            try:
                new_fd = _lock(prepare_run_dir(path))
            except PPOLearnError as exc:
                raise RunDirError(f"{exc} (the earlier run was moved to '{moved_to}')") from None
    except BaseException:
        _close(fd)
        raise
    if not found:
        return RunDir(path, fd)
    _close(fd)
    print(f"ppolearn: moved the earlier run in '{path}' to '{moved_to}'", file=sys.stderr)
    return RunDir(path, new_fd, moved_to)


def hold(
    run_dir: Union[str, Path, RunDir, None], fresh: bool, overwrite: bool = False
) -> Tuple[Optional[Path], Optional[RunDir]]:
    """For a model: its run directory, and the RunDir it must release (None where the caller holds it)."""
    if run_dir is None:
        return None, None
    if isinstance(run_dir, RunDir):
        return run_dir.path, None
    held = claim(run_dir, fresh, overwrite)
    return held.path, held


@contextmanager
def released_on_error(held: Optional[RunDir]) -> Iterator[None]:
    """Release ``held`` if the block raises (a model that failed to build holds nothing)."""
    try:
        yield
    except BaseException:
        if held is not None:
            held.release()
        raise


def make_default_run_dir(env_id: str, seed: int, root: Union[str, Path] = "runs") -> Path:
    """Create and return ``root/<env>_s<seed>_<N>``, N one above the highest there (from 1).

    Each try is an exclusive mkdir, so processes and threads asking at the same moment get distinct ones.
    """
    root = Path(root)
    prefix = "".join(c if c.isalnum() or c in "-_." else "_" for c in env_id) + f"_s{seed}_"
    number = re.compile(re.escape(prefix) + r"([0-9]+)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        taken = [int(m.group(1)) for p in root.iterdir() if (m := number.fullmatch(p.name))]
        for n in itertools.count(max(taken, default=0) + 1):
            candidate = root / f"{prefix}{n}"
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
    except OSError as exc:
        raise RunDirError(f"cannot create a run directory in '{root}': {exc.strerror or exc}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def remove_if_unused(path: Union[str, Path]) -> None:
    """Remove a directory that holds nothing but ``.lock`` and that no process holds (a run that failed
    before writing anything); best effort, silent."""
    path = Path(path)
    try:
        fd = _lock(path)
    except (RunDirError, OSError):
        return  # held by another process (or gone): not ours to remove
    try:
        if {p.name for p in path.iterdir()} <= {LOCK_FILE}:
            (path / LOCK_FILE).unlink()
            path.rmdir()
    except OSError:
        pass
    finally:
        _close(fd)


def _move_aside(path: Path) -> Path:
    """Rename the directory to ``<name>.old-<N>`` beside it, N the lowest free."""
    absolute = path.resolve()
    for n in itertools.count(1):
        target = absolute.with_name(f"{absolute.name}.old-{n}")
        if not os.path.lexists(target):
            break
    shown = path.parent / target.name
    try:
        os.rename(absolute, target)
    except OSError as exc:
        raise RunDirError(
            f"could not move the earlier run in '{path}' aside to '{shown}': {exc.strerror or exc}"
        ) from None
    return shown


def _lock(path: Path) -> Optional[int]:
    """An exclusive flock on ``path/.lock`` with this PID written in it; RunDirError naming the holder."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    lock_path = path / LOCK_FILE
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot create the lock file '{lock_path}': {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            busy = exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
            holder = _holder(fd) if busy else None
            os.close(fd)
            if busy:
                raise RunDirError(_in_use(path, holder)) from None
            if exc.errno in _NO_LOCKS:
                return None
            raise RunDirError(f"cannot lock '{lock_path}': {exc.strerror or exc}") from None
        if _same_file(fd, lock_path):
            break
        os.close(fd)  # the directory was moved aside between open and flock: lock the one now at the path
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # the lock is what counts; the PID only makes the refusal clearer
    return fd


def _holder(fd: int) -> Optional[int]:
    """The PID the holder wrote (it writes it right after locking: wait a moment for it)."""
    for _ in range(20):
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            return None
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None


def _in_use(path: Path, pid: Optional[int]) -> str:
    if pid == os.getpid():
        return f"run directory '{path}' is in use by this process (PID {pid}): close() the model that trains into it"
    holder = f"process {pid}" if pid is not None else "another process"
    return (
        f"run directory '{path}' is in use by {holder} (a train or resume still running): wait for it to end "
        f"or stop it, or choose another --run-dir"
    )


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _close(fd: Optional[int]) -> None:
    if fd is not None:
        os.close(fd)
