"""What the compute stage keeps beside the result files: checkpoints (never committed), locks and claims.

- checkpoints: `<cache_dir>/checkpoints/<key>.pt` with a `.sha256` beside it, verified on load.
- result files: written and read by `fairgap_utils.files` (torch-free; its names are used here as `A.<name>`).

Every write goes to a temporary file in the same folder and is renamed into place. Jobs that share
these folders (the processes of one `compute`, two runs at once, `launcher` jobs) train a
checkpoint under `lock`, so two of them never train the same original or Retrain at once, and
claim each result file before computing it (`claim`: a hidden `.<name>.json.lock` beside it),
so none computes a file another is computing.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import torch

from ..files import REPO_ROOT, atomic_write, cache_dir, load_json, load_records, results_dir, save_json  # noqa: F401


def save_checkpoint(model: torch.nn.Module, key: str, cache=None) -> Path:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    data = buf.getvalue()
    path = cache_dir(cache) / "checkpoints" / f"{key}.pt"
    atomic_write(path, data)
    atomic_write(path.with_suffix(".sha256"), hashlib.sha256(data).hexdigest().encode())
    return path


def save_trained(model: torch.nn.Module, key: str, log: dict, cache=None) -> None:
    """A checkpoint and the JSON log of the run that produced it, both under `key`."""
    save_checkpoint(model, key, cache)
    save_json(cache_dir(cache) / "checkpoints" / f"{key}.json", {**log, "key": key})


def load_trained(model: torch.nn.Module, key: str, cache=None) -> dict | None:
    """The log saved with `save_trained`, with the weights loaded into model; None if either is missing or bad."""
    log = load_json(cache_dir(cache) / "checkpoints" / f"{key}.json", key)
    return log if log is not None and load_checkpoint(model, key, cache) else None


def load_checkpoint(model: torch.nn.Module, key: str, cache=None) -> bool:
    """Load weights saved under `key` into model; False if absent or its checksum fails."""
    path = cache_dir(cache) / "checkpoints" / f"{key}.pt"
    try:
        data, expected = path.read_bytes(), path.with_suffix(".sha256").read_text().strip()
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != expected:
        return False
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return True


# --------------------------------------------------------------------------- locks

LOCK_HEARTBEAT_S = 30      # a lock's holder touches its file this often ...
LOCK_STALE_S = 300         # ... so a lock untouched this long is a dead holder's (on any host)


def _process_start(pid: int) -> str | None:
    """The start time of a process (Linux /proc), None where /proc is absent or the process a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _alive(owner: dict) -> bool:
    """Whether the process that wrote a lock on this host still runs (the same process, not a reused pid)."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    if Path("/proc/self/stat").exists():
        started = _process_start(pid)
        return started is not None and started == owner.get("start")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_owner(path: Path) -> dict:
    """The holder a lock file names; {} while its holder is still writing it (or if it is garbage)."""
    try:
        owner = json.loads(path.read_text() or "{}")
    except json.JSONDecodeError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _stale(path: Path, stale_s: float) -> str | None:
    """Why the lock at path is a dead holder's, or None if it may be held (or is gone)."""
    try:
        owner, age = _read_owner(path), time.time() - path.stat().st_mtime
    except OSError:
        return None
    if owner.get("host") == socket.gethostname() and not _alive(owner):
        return f"its process {owner.get('pid')} on this host has ended"
    if age > stale_s:
        return f"untouched for {age:.0f} s (holder: process {owner.get('pid')} on {owner.get('host')})"
    return None


def _create(path: Path, content: str) -> bool:
    """Create `path` holding `content` unless it exists, atomically: a hard link of a full temporary
    file (safe on NFS too), so no reader ever sees a lock without its holder's name."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(content)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:
        if tmp.stat().st_nlink == 2:            # NFS: the link was made, only its reply got lost
            return True
        try:                                    # no hard links on this file system
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(content)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _break(path: Path, stale_s: float, token_seen: str | None) -> str | None:
    """Remove a stale lock; one breaker at a time (a `.break` file), and only the lock judged stale."""
    guard = path.with_name(path.name + ".break")
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - guard.stat().st_mtime > 60:     # a breaker died in its few milliseconds
                guard.unlink()
        return None
    os.close(fd)
    try:
        why = _stale(path, stale_s)
        try:
            token = _read_owner(path).get("token")
        except OSError:
            return None
        if why and token == token_seen:
            path.unlink(missing_ok=True)
            return why
        return None
    finally:
        guard.unlink(missing_ok=True)


def _owner(**info) -> dict:
    """What a lock file says about its holder: this host, process and start time, a token of its own."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid()),
            "token": uuid.uuid4().hex, "since": time.strftime("%Y-%m-%d %H:%M:%S"), **info}


def _take(path: Path, owner: dict, stale_s: float) -> bool:
    """One attempt to create the lock file, breaking it first if its holder is dead; False if a live one has it."""
    while not _create(path, json.dumps(owner)):
        try:
            seen = _read_owner(path).get("token")
        except OSError:
            continue                                  # released meanwhile: try again at once
        why = _break(path, stale_s, seen) if _stale(path, stale_s) else None
        if not why:
            return False
        print(f"broke the stale lock {path.name}: {why}", flush=True)
    return True


def _remove_if_ours(path: Path, token: str) -> None:
    """Remove the lock file at `path` if it names `token` (never a lock that is not ours); idempotent."""
    with contextlib.suppress(OSError):
        if _read_owner(path).get("token") == token:
            path.unlink()


class Claim:
    """A lock file this process holds, touched every `heartbeat_s` until `release` (or its with-block) ends it."""

    def __init__(self, path: Path, owner: dict, heartbeat_s: float):
        self.path, self.owner = path, owner
        self._done = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat_s,), daemon=True)
        self._beat.start()

    def _heartbeat(self, every_s):
        while not self._done.wait(every_s):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Remove the lock file, if it is still ours (a breaker may have judged it stale); idempotent."""
        if self._done.is_set():
            return
        self._done.set()
        try:
            if self._beat is not threading.current_thread():
                self._beat.join()
        finally:                                      # a Ctrl-C during the join still removes the file
            _remove_if_ours(self.path, self.owner["token"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim(path: Path, stale_s: float = LOCK_STALE_S, heartbeat_s: float = LOCK_HEARTBEAT_S,
          **info) -> Claim | None:
    """Hold the lock file `path` if no live process holds it; None (at once, never waiting) if one does.

    The same file as `lock` writes (holder, heartbeat, a dead holder's lock broken), for work that
    another process may take instead: `compute` claims each result file before computing it and
    skips one that another run has claimed. `info` adds fields to the file (`live_claims` reads them).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = _owner(**info)
    try:
        return Claim(path, owner, heartbeat_s) if _take(path, owner, stale_s) else None
    except BaseException:                             # e.g. Ctrl-C after the file was created: leave none behind
        _remove_if_ours(path, owner["token"])
        raise


def claim_path(result: Path) -> Path:
    """The claim beside a result file: `.ft.json.lock` for `ft.json`, hidden, and never matched by `*.json`."""
    result = Path(result)
    return result.with_name(f".{result.name}.lock")


def holder(path: Path) -> dict:
    """The holder the lock file at `path` names ({} once it is gone)."""
    try:
        return _read_owner(Path(path))
    except OSError:
        return {}


def live_claims(folder: Path, pattern: str, stale_s: float = LOCK_STALE_S) -> list[dict]:
    """The holders (as their lock files name them) of the lock files matching `pattern` in `folder` that
    are alive; a dead holder's file is removed on the way."""
    holders = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            owner = _read_owner(path)
        except OSError:
            continue                                  # released meanwhile
        if _stale(path, stale_s):
            _break(path, stale_s, owner.get("token"))
        elif owner:
            holders.append(owner)
    return holders


@contextlib.contextmanager
def lock(path: Path, wait_s: float | None = None, stale_s: float = LOCK_STALE_S,
         heartbeat_s: float = LOCK_HEARTBEAT_S, poll_s: float = 1.0):
    """Hold the lock file `path` (created only if absent) while the block runs.

    The file names its holder (host, pid, process start) and is touched every `heartbeat_s`;
    a waiter breaks it when that process has ended (same host) or the file is older than
    `stale_s` (any host: a job killed on another node), so a killed job never blocks a rerun.
    Waits at most `wait_s` seconds (None: as long as it takes), then raises TimeoutError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = _owner()
    start, told = time.monotonic(), False
    try:
        while not _take(path, owner, stale_s):
            if wait_s is not None and time.monotonic() - start > wait_s:
                raise TimeoutError(f"{path} is still held after {wait_s} s")
            if not told:
                print(f"waiting for {path.name}: another job is computing it", flush=True)
                told = True
            time.sleep(poll_s)
        with Claim(path, owner, heartbeat_s):
            yield path
    finally:                                          # whatever interrupts (Ctrl-C between taking and holding
        _remove_if_ours(path, owner["token"])         # it included), no lock of ours is left behind


def checkpoint_lock(key: str, cache=None, **kw):
    """The lock under which the checkpoint `key` is trained and saved."""
    return lock(cache_dir(cache) / "checkpoints" / f"{key}.lock", **kw)
