"""Writing and reading model and checkpoint files: atomically, and without ever running code on load.

A file is a dict of tensors, numbers, strings, lists and dicts written with ``torch.save``; it is read
with ``torch.load(weights_only=True)``, which refuses any pickled object beyond those, so a shared
checkpoint cannot execute anything. Writes go to a temporary file in the same directory, are flushed and
fsync'ed, then renamed over the target: a crash or a second Ctrl-C leaves the previous file intact.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Union

import torch

from ppolearn.errors import CheckpointError, PPOLearnError

FORMAT = "ppolearn"
# 2: obs_spec holds the encoding layout (format 1 files, dim/keys/shapes, still load); 3: the layout may hold
# images, and the weights are one "policy" state dict (encoder, actor, critic; 1 and 2 saved actor and critic)
FORMAT_VERSION = 3
_CKPT_NAME = re.compile(r"^step_(\d+)\.pt$")


def prepare_run_dir(path: Union[str, Path]) -> Path:
    """Create the directory and prove it is writable now, not after an hour of training."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        with probe.open("wb") as fh:
            fh.write(b"\0" * 65536)  # a full disk fails here rather than at the first checkpoint
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        raise PPOLearnError(f"run directory '{path}' is not writable: {exc.strerror or exc}") from None
    return path


def atomic_save(obj: Dict[str, Any], path: Union[str, Path]) -> Path:
    """torch.save to a temporary sibling, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible on every platform; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def safe_load(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Load a ppolearn file with weights_only=True; every failure is one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no model or checkpoint file at '{path}'")
    if not zipfile.is_zipfile(path):  # torch.save always writes a zip archive; never unpickle anything else
        raise CheckpointError(f"'{path}' is corrupt, truncated or not a ppolearn file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load '{path}': it holds objects other than tensors and plain data, which could run "
            f"code ({_offending_global(str(exc))})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"'{path}' is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a ppolearn model or checkpoint")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"'{path}' was written by a newer ppolearn (format {data['format_version']})")
    return data


def _offending_global(message: str) -> str:
    """'GLOBAL io.open' out of torch's long refusal message, where it names one."""
    found = re.search(r"GLOBAL [\w.]+", message)
    return f"it asks for {found.group(0)}" if found else "weights_only refused it"


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:012d}.pt"


def list_checkpoints(directory: Path) -> List[Path]:
    """Checkpoint files in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CKPT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, and temporary files a killed process left behind."""
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    for stale in directory.glob(".step_*.tmp"):  # only this process writes here, and its save has finished
        stale.unlink(missing_ok=True)
