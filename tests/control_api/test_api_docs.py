"""/docs and /redoc work without internet: every asset they load is served by the API itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from control_api.settings import Settings

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")


def page_assets(html: str) -> list[str]:
    """Every URL a docs page loads: script/link sources and the spec URL Swagger UI fetches."""
    return [a or b for a, b in ASSET.findall(html)]


def check_offline_docs(get: Callable[[str], Any]) -> None:
    """Shared by the control API and pod tests: no external host, and every asset really served."""
    for page in ("/docs", "/redoc"):
        response = get(page)
        assert response.status_code == 200, page
        html = response.text
        assets = page_assets(html)
        assert any(a.endswith(".js") for a in assets), (page, assets)
        external = [a for a in assets if urlsplit(a).netloc or a.startswith("//")]
        assert not external, f"{page} loads from another host: {external}"
        assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html and "unpkg" not in html
        for asset in assets:
            served = get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > (1000 if asset.endswith((".js", ".css")) else 10), asset
    assert '"validatorUrl": null' in get("/docs").text  # no badge fetched from validator.swagger.io


@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
def test_docs_are_served_without_a_cdn(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(db_settings)
    check_offline_docs(client.get)
