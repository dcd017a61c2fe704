"""Where things are kept: small JSON results (committed) apart from checkpoints (never committed).

- results: `<results_dir>/<profile>/<arch>/seed<S>/<scenario>/<label>.json`, each holding
  the hash (`key`) of the configuration that produced it; a file whose key does not
  match the current configuration is stale and gets recomputed.
- checkpoints: `<cache_dir>/checkpoints/<key>.pt` with a `.sha256` beside it, verified on load.

Every write goes to a temporary file in the same folder and is renamed into place, so
an interrupted run never leaves a half-written result that looks complete.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    from .errors import FairgapError
    name = getattr(profile, "name", profile)
    root = results_dir(results) / name
    records = [json.loads(p.read_text()) for p in sorted(root.glob("*/seed*/*/*.json"))]
    if not records:
        raise FairgapError(f"no results for profile {name!r} under {root}; run "
                           f"`python -m fairgap_utils compute --profile {name}` first")
    return records


def save_checkpoint(model: torch.nn.Module, key: str, cache=None) -> Path:
    import io
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
    import io
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return True
