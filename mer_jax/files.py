"""Files written whole or not at all, and locks that say who holds them (standard library only).

* `atomic(path)`: a temporary file beside `path`, renamed onto it when the block
  succeeds: a reader sees the old file or the whole new one, never half a file.
  `write_bytes` / `write_text` are the one-call forms.
* `Lock(path, what)`: an exclusive `fcntl.flock` on a lock file holding the
  holder's pid, host and start time, for the message another process gets.

Used by the work dirs (`mer_jax.workdir`), the report, the input cache and the
dataset builds (`mer_jax.data`).
"""

import contextlib
import datetime
import os
import pathlib
import socket
import tempfile
import time
from collections.abc import Callable

try:
    import fcntl
except ImportError:  # no flock (Windows): locks protect nothing there
    fcntl = None

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic(path):
    """Yields a temporary path beside `path` (same suffix, fsynced when written through
    `write_bytes`); renames it onto `path` if the block succeeds, removes it otherwise."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 -> what open() would have given
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes(path, write: Callable) -> None:
    """Runs `write(binary file)` into `path`, atomically."""
    with atomic(path) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def write_text(path, text: str) -> None:
    write_bytes(path, lambda f: f.write(text.encode("utf-8")))


class LockHeld(ValueError):
    """Another process holds the lock and the caller chose not to wait."""


class Lock:
    """`with Lock(path, what, log):` (or acquire / release) holds an exclusive flock on `path`.

    `what` says what the holder is doing ("work dir runs/x is in use by a running
    sweep"). If another process holds it: with `wait`, logs who and waits; without,
    raises `LockHeld` naming the holder and the lock file.
    """

    def __init__(self, path, what: str, log: Callable[[str], None] = print, *, wait=True):
        self.path, self.what, self.log, self.wait = pathlib.Path(path), what, log, wait
        self.file = None

    def _holder(self) -> str:
        with contextlib.suppress(OSError):
            text = self.path.read_text().strip()
            if text:
                return text
        return "a process that did not say which"

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

    def acquire(self) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        if fcntl is None:
            return self
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"{self.what} ({self._holder()})"
            if not self.wait:
                self.file.close()
                raise LockHeld(f"{message}; its lock is {self.path}") from None
            self.log(f"waiting: {message}; lock {self.path}")
            start = time.monotonic()
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX)
            self.log(f"the other process finished after {time.monotonic() - start:.0f} s; going on")
        now = datetime.datetime.now().isoformat(timespec="seconds")
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()} on {socket.gethostname()} since {now}\n")
        self.file.flush()
        return self

    def release(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.file.flush()
        if fcntl is not None:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
        self.file.close()
