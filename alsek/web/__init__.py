"""The web dashboard: ``create_app(broker)`` is an ASGI app (Starlette, Jinja2), served by
``alsek dashboard`` or mounted in your own FastAPI / Starlette app. Needs ``alsek[web]``."""

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"alsek.web needs the 'web' extra ({error.name} is missing): pip install 'alsek[web]'"
    ) from error

from alsek.web.app import create_app

__all__ = ["create_app"]
