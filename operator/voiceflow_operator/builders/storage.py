"""Getting a model file into a pod, by the scheme of its URI.

A URI names a model bundle's folder (or a bare .onnx file).
pvc://claim/path is mounted read-only (the inference pod hot-reloads when the file changes);
anything else (s3://, gs://, https://) is downloaded at start by KServe's storage-initializer
image, the same downloader KServe itself uses, into an emptyDir.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

STORAGE_INITIALIZER = "kserve/storage-initializer:v0.14.1"
MODELS_MOUNT = "/models"
DOWNLOAD_DIR = "/mnt/models"


@dataclass(frozen=True)
class ModelFiles:
    path: str  # the model file as seen by the container
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)


def pvc_parts(uri: str) -> tuple[str, str]:
    """pvc://claim/sub/path -> ("claim", "sub/path")."""
    u = urlparse(uri)
    if u.scheme != "pvc" or not u.netloc:
        raise ValueError(f"not a pvc:// URI: {uri!r}")
    return u.netloc, u.path.lstrip("/")


def model_files(uri: str, read_only: bool = True) -> ModelFiles:
    if uri.startswith("pvc://"):
        claim, sub = pvc_parts(uri)
        return ModelFiles(
            path=posixpath.join(MODELS_MOUNT, sub),
            volumes=[
                {"name": "models", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}
            ],
            mounts=[{"name": "models", "mountPath": MODELS_MOUNT, "readOnly": read_only}],
        )
    if uri.startswith("file://"):
        return ModelFiles(path=urlparse(uri).path)
    # A bundle folder is downloaded whole into DOWNLOAD_DIR; a bare .onnx file lands inside it.
    name = posixpath.basename(urlparse(uri).path.rstrip("/"))
    return ModelFiles(
        path=posixpath.join(DOWNLOAD_DIR, name) if name.endswith(".onnx") else DOWNLOAD_DIR,
        volumes=[{"name": "models", "emptyDir": {}}],
        mounts=[{"name": "models", "mountPath": DOWNLOAD_DIR, "readOnly": True}],
        init_containers=[
            {
                "name": "fetch-model",
                "image": STORAGE_INITIALIZER,
                "args": [uri, DOWNLOAD_DIR],
                "volumeMounts": [{"name": "models", "mountPath": DOWNLOAD_DIR}],
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            }
        ],
    )
