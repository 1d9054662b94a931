"""Getting the training dataset into the step pods, by the scheme of its location."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from hera.workflows import GCSArtifact, HTTPArtifact, S3Artifact
from hera.workflows.models import (
    PersistentVolumeClaimVolumeSource,
    SecretKeySelector,
    Volume,
    VolumeMount,
)

from voiceflow_workflows.steps import DATASET_FETCHED, DATASET_MOUNT, STORE

S3_SECRET = "voiceflow-s3"  # accessKey / secretKey, in the workflow's namespace


@dataclass(frozen=True)
class DatasetAccess:
    root: str  # where the steps find the dataset
    volumes: list[Volume] = field(default_factory=list)  # workflow volumes (pvc://)
    mounts: list[VolumeMount] = field(default_factory=list)  # on prepare + train
    artifact: S3Artifact | GCSArtifact | HTTPArtifact | None = None  # fetched by prepare


def store_access(location: str) -> tuple[Volume, VolumeMount]:
    """The model store must be a PVC (pvc://claim/sub/path): mounted read-write at STORE."""
    u = urlparse(location)
    if u.scheme != "pvc" or not u.netloc:
        raise ValueError(f"the model store must be pvc://claim/path, not {location!r}")
    volume = Volume(
        name="artifacts", persistent_volume_claim=PersistentVolumeClaimVolumeSource(claim_name=u.netloc)
    )
    return volume, VolumeMount(name="artifacts", mount_path=STORE, sub_path=u.path.lstrip("/") or None)


def dataset_access(location: str) -> DatasetAccess:
    """pvc://claim/sub/path is mounted read-only; s3://, gs://, http(s):// are fetched into the
    workspace by Argo's artifact driver; file:// is a path already inside the image."""
    u = urlparse(location)
    key = u.path.lstrip("/")
    if u.scheme == "pvc":
        volume = Volume(
            name="dataset",
            persistent_volume_claim=PersistentVolumeClaimVolumeSource(claim_name=u.netloc, read_only=True),
        )
        mount = VolumeMount(name="dataset", mount_path=DATASET_MOUNT, sub_path=key or None, read_only=True)
        return DatasetAccess(root=DATASET_MOUNT, volumes=[volume], mounts=[mount])
    if u.scheme == "s3":
        artifact: S3Artifact | GCSArtifact | HTTPArtifact = S3Artifact(
            name="dataset",
            path=DATASET_FETCHED,
            bucket=u.netloc,
            key=key,
            endpoint="s3.amazonaws.com",
            access_key_secret=SecretKeySelector(name=S3_SECRET, key="accessKey"),
            secret_key_secret=SecretKeySelector(name=S3_SECRET, key="secretKey"),
        )
    elif u.scheme == "gs":
        artifact = GCSArtifact(name="dataset", path=DATASET_FETCHED, bucket=u.netloc, key=key)
    elif u.scheme in ("http", "https"):
        artifact = HTTPArtifact(name="dataset", path=DATASET_FETCHED, url=location)
    elif u.scheme == "file":
        return DatasetAccess(root=u.path)
    else:
        raise ValueError(f"unsupported dataset location {location!r}")
    return DatasetAccess(root=DATASET_FETCHED, artifact=artifact)
