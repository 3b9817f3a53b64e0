"""The image tests run only when asked for: ``pytest -m image tests/image`` (`make image-test`).

They need the image `make image` built (minutes the first time), so a plain ``pytest``
deselects them; they are reported as deselected, never skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image.podman import image_name, podman

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: runs the container image `make image` built (make image-test)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests here ``image``; deselect them unless ``-m`` names that marker."""
    asked = "image" in (config.option.markexpr or "")
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker("image")
            (kept if asked else dropped).append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def image() -> str:
    """The image's tag; fails, naming `make image`, when podman does not have it."""
    name = image_name()
    if podman("image", "exists", name).returncode != 0:
        pytest.fail(f"image {name} not found: run `make image` (or `make image-test`)")
    return name
