"""Numbered export versions (TF Serving's layout): which exist, the next one, and path resolution."""

from __future__ import annotations

import os
from pathlib import Path


def existing_versions(base: str | os.PathLike) -> list[int]:
    """The numeric version folders under `base`, ascending (TF Serving's convention)."""
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(base: str | os.PathLike) -> int:
    versions = existing_versions(base)
    return versions[-1] + 1 if versions else 1


def resolve_export_dir(path: str | os.PathLike, version: int | None = None) -> Path:
    """`saved_models/<name>` (newest version, or `version`) or a version folder itself."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        if version is not None:
            raise ValueError(f"{path} is already a version folder; drop version={version}")
        return path
    if not path.exists():
        present = existing_versions(path.parent) if path.name.isdigit() else []
        if present:
            raise FileNotFoundError(
                f"{path.parent} has no version {path.name}; versions present: {present}"
            )
        raise FileNotFoundError(f"no exported model at {path}")
    versions = existing_versions(path)
    if not versions:
        raise FileNotFoundError(f"{path} holds no numbered version folder with a saved_model.pb")
    if version is None:
        return path / str(versions[-1])
    if version not in versions:
        raise FileNotFoundError(f"{path} has no version {version}; versions present: {versions}")
    return path / str(version)
