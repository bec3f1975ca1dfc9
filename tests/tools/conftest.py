"""The status tests' fixtures (a tracker, a result store and a broker, sync and async)."""

from tests.status.conftest import kit, sync_kit

__all__ = ["kit", "sync_kit"]
