"""What build_services sets up beyond the services themselves."""

from __future__ import annotations

import gc

from matterhub.bootstrap import build_services
from matterhub.settings import Settings


def test_a_hub_process_collects_garbage_less_often(settings: Settings) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's defaults
    try:
        services = build_services(settings)
        services.close()
        young, middle, old = gc.get_threshold()
        assert young == 50_000 and middle >= 50 and old >= 100
    finally:
        gc.set_threshold(*before)
