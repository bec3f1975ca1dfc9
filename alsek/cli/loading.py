"""Importing a user's package for a command: any failure becomes a one-line error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from alsek.exceptions import AlsekError, NoTasksFoundError


@contextmanager
def importing(package: str) -> Iterator[None]:
    """Turn a failure to import ``package`` (its own code failing included) into a
    ``click.ClickException`` naming it; ``NoTasksFoundError`` goes through, for the command to
    say what it wanted."""
    try:
        yield
    except NoTasksFoundError:
        raise
    except ImportError as error:
        raise click.ClickException(f"Cannot import {package!r}: {error}") from error
    except AlsekError as error:
        raise click.ClickException(f"{package!r}: {error}") from error
    except Exception as error:  # the package's own code failed while being imported
        message = f"Cannot import {package!r}: {type(error).__name__}: {error}"
        raise click.ClickException(message) from error
