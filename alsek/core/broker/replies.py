"""The replies of the broker scripts, and what each means to the caller: one table.

Every script that changes a message answers with one of these codes (``submit`` answers
``{OK, n}``, ``{EXISTS, uuid}`` or ``{REVOKED, uuid}``); ``lib_keys.lua`` defines the same
names, and ``lib_finish.lua`` decides most of them in its one lease check (``lease_refusal``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alsek.core.broker.calls import lease_owner
from alsek.core.message import Message
from alsek.exceptions import (
    AlsekError,
    LeaseLostError,
    MessageAlreadyExistsError,
    MessageDoesNotExistsError,
)

#: Done.
OK = "OK"
#: This very request was already carried out (a repeat after a lost reply: of a delivery's
#: retry, release, ack or fail): nothing to do, and no effect applied twice.
ALREADY = "ALREADY"
#: The message does not exist (finished, revoked, expired, or never submitted).
GONE = "GONE"
#: The lease expired or another worker holds it: nothing was changed.
LEASE_LOST = "LEASE_LOST"
#: Another message with this uuid is queued: nothing was written.
EXISTS = "EXISTS"
#: This uuid was revoked: a submit of it writes nothing.
REVOKED = "REVOKED"
#: A submit met the holder of a unique key, whose keys it did not declare: nothing was
#: written, and it is sent again naming the keys that follow.
WANT = "WANT"

Refusal = Callable[[Message, str], AlsekError]

#: What to do instead of submitting a uuid that was revoked.
REVOKED_ADVICE = (
    "submit message.duplicate() (a new uuid) to run it again, or requeue_from_dlq() to put "
    "the revoked message itself back"
)


def _gone(message: Message, operation: str) -> AlsekError:
    return MessageDoesNotExistsError(f"{message.summary} does not exist in the broker")


def _lease_lost(message: Message, operation: str) -> AlsekError:
    return LeaseLostError(
        f"Cannot {operation} {message.summary}: its lease ({lease_owner(message)}) "
        "expired or was taken over by another worker; nothing was changed"
    )


def _exists(message: Message, operation: str) -> AlsekError:
    return MessageAlreadyExistsError(
        f"Cannot {operation} {message.summary}: a message with its uuid is already queued"
    )


def _revoked(message: Message, operation: str) -> AlsekError:
    return MessageAlreadyExistsError(
        f"Cannot {operation} {message.summary}: its uuid was revoked; {REVOKED_ADVICE}"
    )


def _want(message: Message, operation: str) -> AlsekError:
    return AlsekError(
        f"Cannot {operation} {message.summary}: the call did not declare keys it found in data "
        "(the broker sends such a call again naming them; this one was not)"
    )


#: What each reply means: ``None`` the operation is done (by this call, or by an earlier repeat
#: of it), else the error that refuses it.
MEANINGS: dict[str, Refusal | None] = {
    OK: None,
    ALREADY: None,
    GONE: _gone,
    LEASE_LOST: _lease_lost,
    EXISTS: _exists,
    REVOKED: _revoked,
    WANT: _want,
}


def check_reply(reply: Any, message: Message, operation: str, gone_ok: bool = False) -> str:
    """The reply's code when the operation is done (or, with ``gone_ok``, found the message
    gone); otherwise raise the error the reply stands for."""
    code = str(reply)
    if code not in MEANINGS:
        raise RuntimeError(f"Unexpected reply {code!r} from the broker's {operation} script")
    refusal = MEANINGS[code]
    if refusal is None or (gone_ok and code == GONE):
        return code
    raise refusal(message, operation)
