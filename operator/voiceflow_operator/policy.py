"""What a DiarizationModel may ask of the cluster: images, dataset locations and resources.

Anyone who may create a DiarizationModel would otherwise run any image (with the operator's service
account wiring) on any data (`dataset: file:///etc/shadow`) at any size. The CRD's schema and CEL rules
refuse what they can express for every cluster (schemes, `..`, absolute bounds); this policy is the
installation's own (`voiceflow operator --allowed-image/--dataset-root/--max-cpu/--max-memory/--max-gpus`,
from the chart's `operator.policy` values), checked by the operator before it creates anything.
A spec that breaks it fails with `InvalidSpec`, like any spec that can never be reconciled.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

from voiceflow_operator.spec import ImageDefaults, ModelSpec, SpecError

DATASET_SCHEMES = ("s3", "gs", "pvc", "https", "file")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
_SUFFIXES = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60, "n": Decimal("1e-9"), "u": Decimal("1e-6"),
    "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"),
    "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")


class PolicyError(SpecError):
    """The spec asks for something this installation does not allow (the message names the field)."""


@dataclass(frozen=True)
class Policy:
    # Image prefixes a spec may name (e.g. "registry.example/voiceflow/"); the operator's own default
    # images are always allowed. Empty: only those defaults.
    allowed_images: tuple[str, ...] = ()
    # file:// datasets must lie under one of these folders (on the nodes' shared mount).
    dataset_roots: tuple[str, ...] = ("/data",)
    max_cpu: str = "16"
    max_memory: str = "64Gi"
    max_gpus: int = 1
    max_replicas: int = 20  # serving pods per version: with the per-pod maxima, the most a resource can hold


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("500m", "2", "1.5Gi", "1e3") as a number; PolicyError if malformed."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise PolicyError(f"{text!r} is not a resource quantity")
    number, exponent, suffix = match.groups()
    try:
        value = Decimal(number)
        return value * (Decimal(10) ** int(exponent[1:]) if exponent else _SUFFIXES[suffix or ""])
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise PolicyError(f"{text!r} is not a resource quantity") from exc


def check_image(field: str, image: str, defaults: Iterable[str], policy: Policy) -> None:
    if image in set(defaults) or any(image.startswith(prefix) for prefix in policy.allowed_images if prefix):
        return
    allowed = ", ".join(policy.allowed_images) or "only the operator's default images"
    raise PolicyError(f"{field} {image!r} is not allowed by this installation (allowed: {allowed})")


def check_dataset(field: str, uri: str, policy: Policy) -> None:
    parsed = urlparse(uri)
    if parsed.scheme not in DATASET_SCHEMES:
        raise PolicyError(f"{field}: scheme {parsed.scheme!r} is not one of {', '.join(DATASET_SCHEMES)}")
    if ".." in parsed.path.split("/") or "\x00" in uri:
        raise PolicyError(f"{field} must not contain '..'")
    if parsed.scheme != "file":
        return
    if parsed.netloc not in ("", "localhost"):
        raise PolicyError(f"{field}: file:// URIs name a local path, not host {parsed.netloc!r}")
    path = posixpath.normpath(parsed.path)
    if not any(path == root.rstrip("/") or path.startswith(root.rstrip("/") + "/") for root in policy.dataset_roots):
        roots = ", ".join(policy.dataset_roots) or "none: file:// datasets are off"
        raise PolicyError(f"{field}: {path} is outside the allowed dataset roots ({roots})")


def check_resources(field: str, resources: Mapping[str, Mapping[str, object]], policy: Policy) -> None:
    """Requests and limits each within the installation's maximum (and requests never above limits)."""
    bounds = {"cpu": parse_quantity(policy.max_cpu), "memory": parse_quantity(policy.max_memory)}
    bounds.update({gpu: Decimal(policy.max_gpus) for gpu in GPU_RESOURCES})
    for kind in ("requests", "limits"):
        for name, raw in (resources.get(kind) or {}).items():
            value = parse_quantity(raw)  # type: ignore[arg-type]
            if value < 0:
                raise PolicyError(f"{field}.{kind}.{name} must not be negative")
            bound = bounds.get(name)
            if bound is not None and value > bound:
                raise PolicyError(f"{field}.{kind}.{name} {raw} is above this installation's maximum")
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for name in set(requests) & set(limits):
        if parse_quantity(requests[name]) > parse_quantity(limits[name]):  # type: ignore[arg-type]
            raise PolicyError(f"{field}.requests.{name} is above its limit")


def check_spec(spec: ModelSpec, images: ImageDefaults | None, policy: Policy) -> None:
    """PolicyError (a SpecError: the resource fails with InvalidSpec) for the first thing not allowed."""
    images = images or ImageDefaults()
    defaults = (images.serving, images.pipelines)
    if spec.training is not None:
        check_image("spec.training.image", spec.training.image, defaults, policy)
        check_dataset("spec.training.dataset", spec.training.dataset, policy)
        check_resources("spec.training.resources", spec.training.resources, policy)
    check_image("spec.serving.image", spec.serving.image, defaults, policy)
    check_resources("spec.serving.resources", spec.serving.resources, policy)
    if spec.serving.autoscaling.max_replicas > policy.max_replicas:
        raise PolicyError(
            f"spec.serving.autoscaling.maxReplicas {spec.serving.autoscaling.max_replicas} is above this "
            f"installation's maximum of {policy.max_replicas}"
        )
