"""One writer per run directory: an exclusive `flock` on RUN_DIR/.lock for a run's lifetime.

Two runs in one directory would clean each other's temporary files and interleave shards, so
the second one must fail at once, naming the holder. `flock` (not a pid file) because the
kernel releases it when the holder dies, however it dies: a lock file left by a killed run
never blocks the next one. The file's content (pid, host, start time) is only a hint for the
error message; the lock itself is the kernel's. On a shared filesystem (NFS) Linux emulates
flock with byte-range locks, so drivers on different hosts exclude each other too.

The lock is re-entrant within a process (a run that balances its output, a report written
by the run's own process): flock locks belong to open file descriptions, so a second open()
and flock() in the same process would otherwise block on itself.

Also here: the output-directory check that turns "is a file", "cannot create" and "not
writable" into one clear OutputDirError before anything is written.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from babelmill.errors import BabelmillError

LOCK_NAME = ".lock"


class RunStateError(BabelmillError, RuntimeError):
    """The run directory holds results that cannot be combined with this run, or is in use."""


class RunDirInUseError(RunStateError):
    """Another process holds the run directory's lock."""


class OutputDirError(BabelmillError, OSError):
    """The output (run) directory cannot be used: it is a file, cannot be created, or is not
    writable. An OSError, so callers that handle I/O errors keep working; the CLI reports it
    as one line."""

    def __init__(self, message: str, err: int | None = None, filename: str | None = None):
        super().__init__(message)
        self.errno, self.filename = err, filename

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return (type(self), (self.args[0], self.errno, self.filename))


_held: dict[str, list] = {}  # realpath of the lock file -> [fd, depth]
_held_mutex = threading.Lock()


def _probe_write(directory: Path) -> None:
    """Create and remove one file: the only reliable writability test (root ignores mode
    bits, read-only mounts and ACLs do not show in `os.access`)."""
    probe = directory / f".write-probe-{os.getpid()}-{threading.get_ident()}"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def check_output_dir(root: str | Path) -> Path:
    """Create `root` if needed and prove it is a writable directory; OutputDirError if not."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutputDirError(f"output directory {root} exists and is not a directory", errno.ENOTDIR, str(root))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputDirError(f"cannot create output directory {root}: {e.strerror or e}", e.errno, str(root)) from None
    try:
        _probe_write(root)
    except OSError as e:
        raise OutputDirError(f"output directory {root} is not writable: {e.strerror or e}", e.errno, str(root)) from None
    return root


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')} (since {info.get('since', '?')})"


@contextmanager
def run_dir_lock(root: str | Path, what: str = "run"):
    """Hold the exclusive lock of run directory `root` (which must exist) for the block; raise
    RunStateError at once if another process holds it."""
    path = Path(root) / LOCK_NAME
    key = os.path.realpath(path)
    with _held_mutex:
        if key in _held:  # re-entrant within this process
            _held[key][1] += 1
            reentrant = True
        else:
            reentrant = False
    if reentrant:
        try:
            yield path
        finally:
            with _held_mutex:
                _held[key][1] -= 1
        return
    fd = _acquire(path, root)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    with _held_mutex:
        _held[key] = [fd, 1]
    try:
        yield path
    finally:
        with _held_mutex:
            _held[key][1] -= 1
            done = _held[key][1] == 0
            if done:
                del _held[key]
        if done:
            # the file stays: unlinking it would let a process that opened it just before
            # lock a dead inode while a third one locks a new file
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _acquire(path: Path, root) -> int:
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirInUseError(f"run directory {root} is in use by {_holder(path)}; "
                                "wait for it to finish or use another output directory") from None
        except BaseException:
            os.close(fd)
            raise
        # the file we locked must still be the one at `path` (not replaced by --overwrite or a user)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise RunStateError(f"could not lock run directory {root}: its lock file keeps changing")
