"""The user's model store: where it is, what of it the engine serves, and what it refuses."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from voiceflow.bundle import BundleError, ModelBundle, part_path, publish_bundle, write_index
from voiceflow.embedding import DEFAULT_MODEL, default_model_path, packaged_default_model
from voiceflow.model_store import (
    IGNORE_ENV,
    STORE_ENV,
    configured_store,
    model_store_dir,
    promoted_bundle,
    promoted_model,
)


def sealed_copy(folder: Path, stem: str = "cand") -> Path:
    """A sealed bundle outside the package: the packaged GE2E's parts under another name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}.onnx"
    for role in ("model", "metadata", "background", "plda"):
        shutil.copyfile(part_path(DEFAULT_MODEL, role), part_path(target, role))
    write_index(target)
    return target


def published(store: Path) -> ModelBundle:
    return publish_bundle(sealed_copy(store.parent / "source"), store)


def test_the_store_is_the_env_var_else_xdg_data_home_else_local_share() -> None:
    home = Path.home()
    assert model_store_dir({STORE_ENV: "/srv/models"}) == Path("/srv/models")
    assert model_store_dir({STORE_ENV: "~/m"}) == home / "m"
    assert model_store_dir({"XDG_DATA_HOME": "/data"}) == Path("/data/voiceflow/models")
    # a relative XDG_DATA_HOME is invalid by the spec and ignored
    assert model_store_dir({"XDG_DATA_HOME": "rel"}) == home / ".local/share/voiceflow/models"
    assert model_store_dir({}) == home / ".local/share/voiceflow/models"
    assert configured_store({STORE_ENV: "/s"}) == Path("/s")
    assert configured_store({STORE_ENV: "/s", IGNORE_ENV: "0"}) == Path("/s")
    assert configured_store({STORE_ENV: "/s", IGNORE_ENV: "1"}) is None


def test_an_empty_or_missing_store_serves_the_packaged_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert promoted_bundle(tmp_path / "nowhere") is None
    assert promoted_model(None) is None
    with caplog.at_level(logging.WARNING):
        assert default_model_path(tmp_path) == packaged_default_model()
    assert not caplog.records  # nothing promoted is not a warning


def test_the_engine_serves_the_stores_current_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    bundle = published(store)
    served = bundle.model_path.resolve()
    assert served.parent.parent == (store / "bundles").resolve()
    assert default_model_path(store) == served
    monkeypatch.setenv(STORE_ENV, str(store))
    monkeypatch.delenv(IGNORE_ENV, raising=False)
    assert default_model_path() == served
    monkeypatch.setenv(IGNORE_ENV, "1")  # reproducible runs: the store is not consulted at all
    assert default_model_path() == packaged_default_model()


def test_a_corrupt_current_falls_back_to_the_packaged_default_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    bundle = published(store)
    background = bundle.part("background")
    assert background is not None
    background.write_bytes(b"not the background mean it was sealed with")
    with pytest.raises(BundleError, match="corrupt"):
        promoted_bundle(store)
    with caplog.at_level(logging.WARNING, logger="voiceflow.model_store"):
        assert default_model_path(store) == packaged_default_model()
    assert "packaged default" in caplog.text and "corrupt" in caplog.text


def test_a_current_pointing_outside_the_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    published(store)
    elsewhere = published(tmp_path / "elsewhere")  # intact and digest-named, but not this store's
    link = store / "current"
    link.unlink()
    link.symlink_to(elsewhere.model_path.parent.resolve())
    with pytest.raises(BundleError, match="outside the store"):
        promoted_bundle(store)
    assert promoted_model(store) is None


def test_a_bundles_folder_linked_out_of_the_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    published(store)
    outside = tmp_path / "outside-bundles"
    (store / "bundles").rename(outside)
    (store / "bundles").symlink_to(outside)
    with pytest.raises(BundleError, match="outside the store"):
        promoted_bundle(store)


def test_missing_parts_unsealed_or_misnamed_bundles_are_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    bundle = published(store)
    folder = bundle.model_path.resolve().parent
    background = bundle.part("background")
    assert background is not None
    saved = background.read_bytes()
    background.unlink()
    with pytest.raises(BundleError, match="missing"):
        promoted_bundle(store)
    background.write_bytes(saved)
    index = folder / "model.bundle.json"
    sealed = index.read_text()
    index.unlink()
    with pytest.raises(BundleError, match="not a sealed bundle"):
        promoted_bundle(store)
    index.write_text(sealed)
    renamed = folder.with_name("0" * 16)
    folder.rename(renamed)
    (store / "current").unlink()
    (store / "current").symlink_to(os.path.join("bundles", renamed.name))
    with pytest.raises(BundleError, match="not its bundle's digest"):
        promoted_bundle(store)


def test_a_part_linked_to_a_file_outside_the_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    bundle = published(store)
    plda = bundle.part("plda")
    assert plda is not None
    outside = tmp_path / "same-bytes.plda.npz"
    shutil.copyfile(plda, outside)  # it matches its hash today; a link could change under us
    plda.unlink()
    plda.symlink_to(outside)
    with pytest.raises(BundleError, match="not a symlink"):
        promoted_bundle(store)


def test_a_current_that_is_not_a_link_or_names_nothing_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "current").symlink_to("bundles/0123456789abcdef")
    with pytest.raises(BundleError, match="names no bundle"):
        promoted_bundle(store)
    (store / "current").unlink()
    (store / "current").mkdir()
    with pytest.raises(BundleError, match="not a symlink"):
        promoted_bundle(store)
