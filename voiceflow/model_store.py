"""The user's model store: where promotion puts the model the engine serves by default.

The installed package is read-only data (its `models/` folder holds the shipped choice). A model
that passes the gate (`voiceflow evaluate --promote`) is published here instead, with
`voiceflow.bundle.publish_bundle`: `bundles/<digest16>/model.*` plus an atomic `current` symlink,
the same layout as a pod's active-model folder.

Where: `$VOICEFLOW_MODEL_STORE`, else `$XDG_DATA_HOME/voiceflow/models`, else
`~/.local/share/voiceflow/models`. `VOICEFLOW_IGNORE_MODEL_STORE=1` makes the engine serve the
packaged default whatever the store holds (reproducible runs, CI).

The store's `current` is served only when it is what `publish_bundle` writes: a symlink to a
direct child of the store's own `bundles/` folder, named after the digest of the sealed bundle
inside it, every part a plain file that matches the index. Anything else (a link out of the store,
a missing or corrupt part, a bare unsealed model) is refused; the engine then falls back to the
packaged default and logs a warning naming why, so a damaged store never stops diarization but
never goes unnoticed either.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from voiceflow.bundle import (
    BUNDLES_DIR,
    CURRENT_LINK,
    FOLDER_DIGEST_CHARS,
    PUBLISHED_MODEL,
    BundleError,
    ModelBundle,
    index_path,
    verify_bundle,
)

STORE_ENV = "VOICEFLOW_MODEL_STORE"
IGNORE_ENV = "VOICEFLOW_IGNORE_MODEL_STORE"
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})

log = logging.getLogger(__name__)


def model_store_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the model store lives (it need not exist yet)."""
    explicit = environ.get(STORE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    xdg = environ.get("XDG_DATA_HOME", "").strip()
    data_home = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return data_home / "voiceflow" / "models"


def store_ignored(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(IGNORE_ENV, "").strip().lower() not in FALSE_WORDS


def configured_store(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The store the engine consults for its default model; None when told to ignore it, or when
    there is no home to find it in (a container's anonymous user): then nothing was promoted."""
    if store_ignored(environ):
        return None
    try:
        return model_store_dir(environ)
    except RuntimeError:  # Path.home(): "Could not determine home directory"
        return None


def promoted_bundle(store: Path) -> ModelBundle | None:
    """The sealed bundle the store's `current` names, verified; None when nothing was promoted.

    Raises BundleError when `current` is anything but what `publish_bundle` writes."""
    current = store / CURRENT_LINK
    if not current.is_symlink():
        if current.exists():
            raise BundleError(f"{current}: not a symlink (the store's current must name one of its bundles)")
        return None
    try:
        folder = current.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # dangling, or a symlink loop
        raise BundleError(f"{current}: names no bundle ({exc})") from exc
    bundles = store.resolve() / BUNDLES_DIR
    if folder.parent != bundles:
        raise BundleError(f"{current}: points to {folder}, outside the store's {bundles}")
    model = folder / PUBLISHED_MODEL
    index = index_path(model)
    if not index.is_file() or index.is_symlink():
        raise BundleError(f"{folder}: not a sealed bundle (no {index.name} there)")
    bundle = verify_bundle(model)
    linked = [part.path for part in bundle.parts.values() if part.path.is_symlink()]
    if linked:
        raise BundleError(f"{linked[0]}: a bundle part in the store must be a file, not a symlink")
    named = bundle.digest[:FOLDER_DIGEST_CHARS]
    if folder.name != named:  # content-addressed: the name is what it holds
        raise BundleError(f"{folder}: the folder's name is not its bundle's digest ({named})")
    return bundle


def promoted_model(store: Path | None) -> Path | None:
    """The promoted model file to serve, or None (no store, nothing promoted, or refused: logged)."""
    if store is None:
        return None
    try:
        bundle = promoted_bundle(store)
    except (BundleError, OSError) as exc:
        log.warning("model store %s: its promoted model is not served, the packaged default is: %s", store, exc)
        return None
    return bundle.model_path if bundle is not None else None
