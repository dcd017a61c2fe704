"""artifacts.lock: one holder at a time, stale locks of dead holders broken, never a live one's.

And the pipeline under it: two jobs that need the same original train it once.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from fairgap_utils.computing import artifacts as A


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_lock(path, **owner):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "token": "theirs", **owner}))


def test_lock_excludes_and_leaves_nothing_behind(tmp_path):
    path, inside, overlaps = tmp_path / "k.lock", [], []

    def job(i):
        with A.lock(path, poll_s=0.01):
            inside.append(i)
            if len(inside) > 1:
                overlaps.append(tuple(inside))
            time.sleep(0.05)
            inside.remove(i)
    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    assert list(tmp_path.iterdir()) == []


def test_lock_names_its_holder_and_beats(tmp_path):
    path = tmp_path / "k.lock"
    with A.lock(path, heartbeat_s=0.05):
        owner = json.loads(path.read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        os.utime(path, (0, 0))
        time.sleep(0.3)
        assert time.time() - path.stat().st_mtime < 5          # the heartbeat touched it again
    assert not path.exists()


def test_stale_lock_of_a_dead_process_is_broken(tmp_path, capsys):
    path = tmp_path / "k.lock"
    _write_lock(path, pid=_dead_pid(), start="1")
    with A.lock(path, wait_s=5):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "broke the stale lock k.lock" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_live_lock_is_not_broken(tmp_path):
    path = tmp_path / "k.lock"
    _write_lock(path, pid=os.getpid(), start=A._process_start(os.getpid()))     # alive: this very process
    with pytest.raises(TimeoutError):
        with A.lock(path, wait_s=0.3, poll_s=0.05):
            pass
    assert json.loads(path.read_text())["token"] == "theirs"                      # and left in place


def test_reused_pid_does_not_keep_a_lock_alive(tmp_path):
    path = tmp_path / "k.lock"
    _write_lock(path, pid=os.getpid(), start="some other process's start time")
    with A.lock(path, wait_s=5):
        pass


def test_lock_of_another_host_is_broken_only_once_untouched(tmp_path):
    path = tmp_path / "k.lock"
    _write_lock(path, host="node-elsewhere", pid=1)
    with pytest.raises(TimeoutError):                                            # fresh: its holder may run
        with A.lock(path, wait_s=0.3, poll_s=0.05, stale_s=60):
            pass
    os.utime(path, (time.time() - 120, time.time() - 120))                       # no heartbeat for 2 minutes
    with A.lock(path, wait_s=5, stale_s=60):
        pass
    assert not path.exists()


# --------------------------------------------------------------------------- the pipeline under the lock

def test_two_jobs_needing_one_original_train_it_once(tmp_path, tiny_npz, monkeypatch):
    from fairgap_utils.computing import pipeline as P
    from fairgap_utils.computing import stage as S
    from fairgap_utils.config import get_profile
    trained, entered, both = [], [], threading.Event()
    real_train, real_lock = P.train_supervised, P.A.checkpoint_lock

    def watched_lock(key, cache=None, **kw):           # called by each job before it waits for the lock
        entered.append(key)
        if len(entered) == 2:
            both.set()
        return real_lock(key, cache, **kw)

    def train_once_both_jobs_are_at_the_lock(*a, **k):  # the jobs overlap for certain, however slow the machine
        trained.append(threading.get_ident())
        assert both.wait(300), "the second job never reached the lock while the first trained"
        return real_train(*a, **k)
    monkeypatch.setattr(P.A, "checkpoint_lock", watched_lock)
    monkeypatch.setattr(P, "train_supervised", train_once_both_jobs_are_at_the_lock)
    monkeypatch.setattr(P, "measure_model", lambda *a, **k: {"metrics": {}, "fairness": [], "attacks": {},
                                                       "attack_images": 0, "eval_time_s": 0.0})
    profile = get_profile("smoke").replace(archs=("resnet_tiny",), n_train_per_class=5, n_test_per_class=5,
                                           train_resnet=get_profile("smoke").train_resnet.__class__(
                                               epochs=1, batch_size=50))
    errors = []

    def job(scenario):
        try:
            S.compute(profile, scenarios=[scenario], methods=[], results=tmp_path / "R", cache=tmp_path / "C",
                      data_path=str(tiny_npz[0]), device="cpu")
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=job, args=(s,)) for s in ("class", "random")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(trained) == 1 and len(set(entered)) == 1
    assert sorted(p.suffix for p in (tmp_path / "C" / "checkpoints").iterdir()) == [".json", ".pt", ".sha256"]


# --------------------------------------------------------------------------- claims: never waiting

def test_a_held_claim_makes_a_second_claimant_skip(tmp_path):
    path = A.claim_path(tmp_path / "ft.json")
    assert path.name == ".ft.json.lock"
    first = A.claim(path, run="a")
    assert first is not None and A.claim(path) is None                   # at once, no waiting
    assert [o["run"] for o in A.live_claims(tmp_path, ".*.lock")] == ["a"]
    first.release()
    assert not path.exists()
    with A.claim(path) as second:
        assert second is not None and A.holder(path)["pid"] == os.getpid()
    assert list(tmp_path.iterdir()) == []


def test_a_dead_holders_claim_is_broken(tmp_path, capsys):
    path = A.claim_path(tmp_path / "ft.json")
    _write_lock(path, pid=_dead_pid(), start="1")
    assert A.live_claims(tmp_path, ".*.lock") == [] and not path.exists()   # listing removes it
    _write_lock(path, pid=_dead_pid(), start="1")
    held = A.claim(path)
    assert held is not None and A.holder(path)["pid"] == os.getpid()
    assert "broke the stale lock .ft.json.lock" in capsys.readouterr().out
    held.release()


# --------------------------------------------------------------------------- Ctrl-C at any moment leaves no lock

@pytest.mark.parametrize("where", ["taking", "releasing"])
def test_an_interrupt_while_taking_or_releasing_a_lock_leaves_no_file(where, tmp_path, monkeypatch):
    """A Ctrl-C (KeyboardInterrupt) right after the lock file is created, or during the release's wait for the
    heartbeat thread, still removes the file: a Ctrl-C of `compute` once left a checkpoint lock behind."""
    from fairgap_utils.computing import artifacts as A
    path = tmp_path / "k.lock"
    if where == "taking":
        def interrupted(*a, **k):
            assert path.exists()                       # the file is there when the interrupt lands
            raise KeyboardInterrupt
        monkeypatch.setattr(A.Claim, "__init__", interrupted)
        with pytest.raises(KeyboardInterrupt):
            with A.lock(path):
                pass
        with pytest.raises(KeyboardInterrupt):
            A.claim(path)
    else:
        import threading
        join = threading.Thread.join
        def interrupted_join(self, *a, **k):
            join(self, *a, **k)
            raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            with A.lock(path):
                monkeypatch.setattr(threading.Thread, "join", interrupted_join)
        monkeypatch.setattr(threading.Thread, "join", join)
    assert not path.exists()
