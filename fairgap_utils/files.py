"""Where result files live and how they are written and read: torch-free, so a page that only reads
results imports neither torch nor the compute machinery.

- results: `<results_dir>/<profile>/<arch>/seed<S>/<scenario>/<label>.json`, each holding
  the hash (`key`) of the configuration that produced it; a file whose key does not
  match the current configuration is stale and gets recomputed.
- checkpoints live under `cache_dir()` (`computing.artifacts` writes and reads them).

Every write goes to a temporary file in the same folder and is renamed into place, so
an interrupted run never leaves a half-written result that looks complete.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from .errors import FairgapError

REPO_ROOT = Path(__file__).resolve().parent.parent   # the repository: fairgap_utils/..


def results_dir(path=None) -> Path:
    return Path(path or os.environ.get("FAIRGAP_RESULTS") or REPO_ROOT / "results")


def cache_dir(path=None) -> Path:
    return Path(path or os.environ.get("FAIRGAP_CACHE") or REPO_ROOT / "cache")


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(obj):
    """JSON has no NaN: write it as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def save_json(path: Path, obj) -> None:
    atomic_write(Path(path), (json.dumps(_finite(obj), indent=1, sort_keys=True) + "\n").encode())


def load_json(path: Path, key: str | None = None):
    """The JSON at path, or None if absent, unreadable or made by another configuration."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(obj, dict) or (key is not None and obj.get("key") != key):
        return None
    return obj


def load_records(profile, results=None) -> list[dict]:
    """Every result file of a profile (a name or a Profile) under `results` (default: results_dir()), as dicts."""
    name = getattr(profile, "name", profile)
    root = results_dir(results) / name
    records = [json.loads(p.read_text()) for p in sorted(root.glob("*/seed*/*/*.json"))]
    if not records:
        raise FairgapError(f"no results for profile {name!r} under {root}; run "
                           f"`python -m fairgap_utils compute --profile {name}` first")
    return records
