"""A model is one bundle: the ONNX graph and every sidecar the engine reads beside it.

The embedding runtime reads up to five files named after the model's stem:

    model.onnx             the graph (front end inside)
    model.json             metadata, including the export-time calibration (merge-threshold shift)
    model.background.npy   the background mean the streaming session subtracts
    model.manifest.json    the gate's record (what it was scored on, and how)
    model.plda.npz         the LDA/PLDA the Bayesian clustering scores with

and `model.bundle.json`, the index: which parts belong to the bundle and each part's sha256. The
bundle's identity is one digest over its parts' roles and hashes (not their file names, so a copy
renamed to `model.*` keeps its identity). A bundle with an index loads only when every listed part
is present and intact and no unlisted sidecar sits beside it; a missing background mean used to
make streaming silently collapse every speaker into one, and that must be a load-time error.

Bundles move as a whole: `publish_bundle` copies one into a fresh folder and then swaps a
`current` symlink to it in one rename, so a watching pod sees the old bundle or the new one,
never a mixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

BUNDLE_FORMAT = 1
MODEL_ROLE = "model"
# role -> the file name's ending after the model's stem; the one list every mover and loader uses.
PART_SUFFIXES: dict[str, str] = {
    MODEL_ROLE: ".onnx",
    "metadata": ".json",
    "background": ".background.npy",
    "manifest": ".manifest.json",
    "plda": ".plda.npz",
}
INDEX_SUFFIX = ".bundle.json"
CURRENT_LINK = "current"  # in an active-model folder: the symlink to the bundle being served
BUNDLES_DIR = "bundles"
FOLDER_DIGEST_CHARS = 16  # a published bundle's folder is named by this much of its digest
PUBLISHED_STEM = "model"
# A published bundle's model file (model.onnx): what every active-model folder serves.
PUBLISHED_MODEL = PUBLISHED_STEM + PART_SUFFIXES[MODEL_ROLE]
MAX_INDEX_BYTES = 64 * 1024


class BundleError(ValueError):
    """A bundle that cannot serve: a part missing, corrupt, foreign, or an unreadable index."""


@dataclass(frozen=True)
class BundlePart:
    role: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class ModelBundle:
    """A verified (or, without an index, merely described) set of model files."""

    model_path: Path
    parts: Mapping[str, BundlePart]
    digest: str
    indexed: bool

    @property
    def roles(self) -> list[str]:
        return sorted(self.parts)

    def part(self, role: str) -> Path | None:
        found = self.parts.get(role)
        return found.path if found is not None else None


def part_path(model_path: Path, role: str) -> Path:
    """Where `role` lives beside `model_path` (model.onnx -> model.background.npy, ...)."""
    stem = model_path.name.removesuffix(PART_SUFFIXES[MODEL_ROLE])
    return model_path.with_name(stem + PART_SUFFIXES[role])


def index_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name.removesuffix(PART_SUFFIXES[MODEL_ROLE]) + INDEX_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_digest(hashes: Mapping[str, str]) -> str:
    """One identity for the whole bundle: sha256 over the sorted (role, part sha256) pairs."""
    canonical = json.dumps(sorted(hashes.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def present_parts(model_path: Path) -> dict[str, Path]:
    """The parts that exist beside `model_path` (the model file itself included when it exists)."""
    return {role: part_path(model_path, role) for role in PART_SUFFIXES if part_path(model_path, role).is_file()}


def describe_bundle(model_path: Path) -> ModelBundle:
    """Hash whatever parts sit beside `model_path` (no index needed: for writing one, or a bare model)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise BundleError(f"{model_path}: model file not found")
    parts = {role: BundlePart(role, path, file_sha256(path)) for role, path in present_parts(model_path).items()}
    digest = bundle_digest({role: part.sha256 for role, part in parts.items()})
    return ModelBundle(model_path, parts, digest, indexed=False)


def write_index(model_path: Path) -> ModelBundle:
    """Seal the parts beside `model_path` into a bundle: write its index (atomically) and return it."""
    bundle = describe_bundle(Path(model_path))
    index = {
        "format": BUNDLE_FORMAT,
        "digest": bundle.digest,
        "parts": {role: part.sha256 for role, part in sorted(bundle.parts.items())},
    }
    target = index_path(bundle.model_path)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    os.replace(staging, target)
    return ModelBundle(bundle.model_path, bundle.parts, bundle.digest, indexed=True)


def parse_index(text: str, where: str) -> dict[str, str]:
    """The index's role -> sha256 map, validated; a BundleError naming `where` otherwise."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BundleError(f"{where}: bundle index is not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{where}: bundle index must be an object with format {BUNDLE_FORMAT}")
    parts = data.get("parts")
    if not isinstance(parts, dict) or MODEL_ROLE not in parts:
        raise BundleError(f"{where}: bundle index must list its parts, the model among them")
    for role, sha in parts.items():
        if role not in PART_SUFFIXES:
            raise BundleError(f"{where}: unknown bundle part {role!r} (known: {', '.join(PART_SUFFIXES)})")
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BundleError(f"{where}: part {role!r} needs a sha256 hex digest")
    if data.get("digest") != bundle_digest(parts):
        raise BundleError(f"{where}: bundle digest does not match its parts")
    return dict(parts)


def verify_bundle(model_path: Path, ignore: Collection[str] = ()) -> ModelBundle:
    """The bundle `model_path` belongs to, every part checked against its index.

    Without an index the model is a bare file (a user's own ONNX): described, not verified.
    Roles in `ignore` are left out, neither required nor refused, and out of the digest: promotion
    ignores the gate's manifest, which each evaluation rewrites beside a candidate."""
    model_path = Path(model_path)
    index = index_path(model_path)
    if not index.is_file():
        return describe_bundle(model_path)
    if index.stat().st_size > MAX_INDEX_BYTES:
        raise BundleError(f"{index}: bundle index is larger than {MAX_INDEX_BYTES} bytes")
    listed = parse_index(index.read_text(errors="replace"), str(index))
    if MODEL_ROLE in ignore:
        raise BundleError("the model itself cannot be left out of a bundle's check")
    expected = {role: sha for role, sha in listed.items() if role not in ignore}
    parts: dict[str, BundlePart] = {}
    for role, sha in expected.items():
        path = part_path(model_path, role)
        if not path.is_file():
            raise BundleError(f"{path}: bundle part {role!r} is missing (the bundle {index.name} lists it)")
        actual = file_sha256(path)
        if actual != sha:
            raise BundleError(f"{path}: bundle part {role!r} is corrupt (sha256 {actual[:12]}, expected {sha[:12]})")
        parts[role] = BundlePart(role, path, actual)
    for role, path in present_parts(model_path).items():
        if role not in listed and role not in ignore:
            raise BundleError(f"{path}: a {role!r} file that is not part of the bundle {index.name}")
    return ModelBundle(model_path, parts, bundle_digest(expected), indexed=True)


def copy_bundle(source: ModelBundle, directory: Path) -> ModelBundle:
    """Copy a bundle's parts into `directory` as `model.*` and seal it there with an index."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / PUBLISHED_MODEL
    for role, part in source.parts.items():
        shutil.copyfile(part.path, part_path(target, role))
    copied = write_index(target)
    if copied.digest != source.digest:
        raise BundleError(f"{directory}: the copy's digest differs from its source's (a part changed while copying)")
    return verify_bundle(target)


def resolve_active(directory: Path) -> Path:
    """An active-model folder's served bundle folder: what `current` points to, else the folder itself."""
    current = directory / CURRENT_LINK
    return current.resolve() if current.is_dir() else directory


def publish_bundle(model_path: Path, directory: Path, keep: int = 2) -> ModelBundle:
    """Make the bundle of `model_path` the one `directory` serves, in one atomic switch.

    The parts are copied into `bundles/<digest>/` and verified there; then `current` is swapped to
    it by renaming a new symlink over the old. Older bundles beyond the last `keep` are removed."""
    source = verify_bundle(Path(model_path))
    store = directory / BUNDLES_DIR
    final = store / source.digest[:FOLDER_DIGEST_CHARS]
    if final.is_dir() and not _intact(final):
        shutil.rmtree(final)  # a damaged earlier copy of the same bundle: copy it afresh
    if not final.is_dir():
        staging = store / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            copy_bundle(source, staging)
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    os.utime(final)  # the newest published, for pruning, even when an earlier copy was reused
    link = directory / f".{CURRENT_LINK}.{os.getpid()}.tmp"
    link.unlink(missing_ok=True)
    os.symlink(os.path.join(BUNDLES_DIR, final.name), link)
    os.replace(link, directory / CURRENT_LINK)
    _prune(store, keep_names={final.name}, keep=keep)
    return verify_bundle(directory / CURRENT_LINK / PUBLISHED_MODEL)


def _intact(folder: Path) -> bool:
    try:
        verify_bundle(folder / PUBLISHED_MODEL)
    except (BundleError, OSError):
        return False
    return True


def model_file_in(path: Path, preferred_name: str = PUBLISHED_MODEL) -> Path:
    """The model file a path names: a file as is; a folder's served bundle (`current`), its
    `preferred_name`, else its only `*.onnx`."""
    if not path.is_dir():
        return path
    folder = resolve_active(path)
    preferred = folder / preferred_name
    if preferred.exists():
        return preferred
    candidates = sorted(c for c in folder.glob("*.onnx") if not c.name.startswith("."))
    if len(candidates) != 1:
        raise BundleError(f"{folder} holds {len(candidates)} .onnx files; expected {preferred_name} or exactly one")
    return candidates[0]


def _prune(store: Path, keep_names: set[str], keep: int) -> None:
    """Remove all but the newest `keep` bundles (pods hold loaded models in memory, not these files)."""
    bundles = sorted(
        (p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    survivors = set(keep_names) | {p.name for p in bundles[: max(keep, 1)]}
    for path in bundles:
        if path.name not in survivors:
            shutil.rmtree(path, ignore_errors=True)


def active_bundle(directory: Path) -> ModelBundle | None:
    """The bundle an active-model folder serves now, verified; None when it serves nothing yet."""
    current = directory / CURRENT_LINK
    if not current.is_dir():
        return None
    return verify_bundle(current / PUBLISHED_MODEL)
