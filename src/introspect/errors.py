"""The errors every entry point turns into one line and an exit code (never a traceback).

An :class:`InputError` is about something the user or a colleague handed us: a config, an override,
a record or spec given to the CLI, a file in a results directory. Its message names the file or key
and says what to do. Code raises the narrowest subclass; the CLI, the worker and the Snakefile print
``str(error)`` and exit with :data:`EXIT_INPUT_ERROR`.
"""
from __future__ import annotations

import errno

EXIT_INPUT_ERROR = 2  # a bad config, record, spec or results file: fix the input, rerunning will not help
EXIT_TRAINING_ERROR = 3  # a run failed while training (e.g. a non-finite loss): its log says which epoch
EXIT_DATA_ERROR = 4  # a dataset is missing or unreadable at data_root
EXIT_DEVICE_ERROR = 5  # the device (CUDA, driver) failed: one line with the device and versions
EXIT_BUSY = 75  # another live process holds this run's writer lock (EX_TEMPFAIL: try again later)
EXIT_INTERRUPTED = 143  # SIGTERM/SIGINT (pre-emption): the checkpoint is saved; rerunning resumes
# What flock raises where the file system has no locks (NFS without lockd, Lustre mounted noflock)
LOCKING_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class InputError(ValueError):
    """Something handed to us is wrong; the message names where and what to do."""


class UnsafePathError(InputError):
    """A path, run id or name would leave its root (``..``, an absolute path, a symlink out)."""


class ResultFileError(InputError):
    """A file in a results directory is missing, corrupt, tampered with or of an unsafe format."""
