"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class PPOLearnError(Exception):
    """Base class: anything the user can fix (bad input, a broken environment, an unreadable file)."""


class ConfigError(PPOLearnError, ValueError):
    """A configuration key or value is not allowed."""


class EnvError(PPOLearnError):
    """The environment could not be created, has unsupported spaces, or failed while running."""


class CheckpointError(PPOLearnError):
    """A model or checkpoint file is missing, corrupt, unsafe, or belongs to another environment."""


class TrainingInterrupted(PPOLearnError):
    """Training was stopped by a signal after saving a checkpoint."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class TrainingDiverged(PPOLearnError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class RunDirError(PPOLearnError):
    """A run directory holds an earlier run, is in use by another process, or cannot be created or moved."""
