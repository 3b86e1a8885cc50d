from __future__ import annotations

import pytest

from tests.review.helpers import World, build_world


@pytest.fixture
def world(app, factory, as_user) -> World:
    return build_world(app, factory, as_user)
