"""One account, one name: a request's user, as NSS names the account, before anything else.

Where NSS matches names without regard to case (SSSD with `case_sensitive = false`,
winbind), `ALICE` and `alice` log in to the same account. Every decision (access,
policy, state, lock-out, replay) is keyed on the name, so the name is made the
account's own (its pw_name) once, as the request arrives: each account then has one
state however it was typed, and replies name the account. A name NSS does not know
stays as typed; it takes the unknown user's path like any other.
"""

from __future__ import annotations

from pam_twofa.protocol import Request

from .directory import Directory

USER_FIELD = "user"  # the field naming the account a request is about (the protocol's)


def resolve(request: Request, directory: Directory) -> Request:
    """`request` with its user field as the account's own name."""
    typed = request.fields.get(USER_FIELD)
    if not isinstance(typed, str):
        return request
    name = directory.canonical(typed)
    if name == typed:
        return request
    return Request(request.op, {**request.fields, USER_FIELD: name}, request.id)
