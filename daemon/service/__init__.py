"""The operations of twofad, as logic over a store, keys, a policy, a clock and accounts.

Nothing here opens a socket or reads the time: the server hands in the store and the
clock, so every rule about windows, replay, lock-out and recovery codes is tested with
an injected clock and no sleeping.  Each operation runs in one transaction and writes
only through compare-and-set; a lost race is retried from a fresh read.

`Service` is the public face the server calls.  The operations live by job, each a
function of a `Context` (context.py):

    logins      check, verify, resync: the PAM hook's questions
    decoys      names with no account, answered like accounts
    enrollment  a first device, confirming a device, a key shown again, an import
    devices     an account's devices: listing, adding, renaming, removing
    email       an address proven, a code mailed at the prompt and checked once
    accounts    status, listing, explain, disable, unlock, new recovery codes
    policy      putting a policy in force, and what one would change
    proof       the current code a person gives to act on their own account
    replies     the one shape of a lock-out in a reply
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from ..directory import Directory
from ..keys import Keys
from ..policy import Policy
from ..store import Backend
from . import accounts, devices, email, enrollment, keyring, logins
from . import policy as policies
from .context import PAGE_SIZE, Clock, Context, ServiceError

__all__ = ["PAGE_SIZE", "Context", "Service", "ServiceError"]

P = ParamSpec("P")
R = TypeVar("R")


def _on_context(
    operation: Callable[Concatenate[Context, P], R],
) -> Callable[Concatenate[Service, P], R]:
    """A method that runs `operation` on the service's context.

    The operations are written once, as functions of a Context; the facade only
    names them, so a signature cannot drift between the two.
    """

    def method(self: Service, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return operation(self.context, *args, **kwargs)

    method.__name__ = operation.__name__
    method.__doc__ = operation.__doc__
    return method


class Service:
    """Every operation of the protocol, over one context; the server's only way in."""

    def __init__(
        self,
        store: Backend,
        keys: Keys,
        policy: Policy,
        clock: Clock,
        directory: Directory,
    ) -> None:
        self.context = Context(store, keys, policy, clock, directory)

    # What the server and tests read; the policy is what a reload replaces.
    store = property(lambda self: self.context.store)
    keys = property(lambda self: self.context.keys)
    clock = property(lambda self: self.context.clock)
    directory = property(lambda self: self.context.directory)

    @property
    def policy(self) -> Policy:
        return self.context.policy

    @policy.setter
    def policy(self, new: Policy) -> None:
        self.context.policy = new

    # logins: the PAM hook's questions
    check = _on_context(logins.check)
    verify = _on_context(logins.verify)
    resync = _on_context(logins.resync)

    # enrollment
    enroll_begin = _on_context(enrollment.begin)
    enroll_confirm = _on_context(enrollment.confirm)
    show_secret = _on_context(enrollment.show_secret)
    import_secret = _on_context(enrollment.import_secret)

    # devices
    list_devices = _on_context(devices.list_devices)
    add_device = _on_context(devices.add)
    rename_device = _on_context(devices.rename)
    remove_device = _on_context(devices.remove)

    # codes by email
    set_email = _on_context(email.set_address)
    confirm_email = _on_context(email.confirm_address)
    remove_email = _on_context(email.remove_address)
    send_email_code = _on_context(email.send_login_code)
    verify_email_code = _on_context(email.verify_code)
    email_test = _on_context(email.test_message)

    # accounts
    status = _on_context(accounts.status)
    list_users = _on_context(accounts.list_users)
    explain = _on_context(accounts.explain)
    decision = _on_context(accounts.decision)
    disable = _on_context(accounts.disable)
    unlock = _on_context(accounts.unlock)
    regenerate_recovery_codes = _on_context(accounts.regenerate_recovery_codes)

    # the key ring
    reseal = _on_context(keyring.reseal)

    # the policy
    replace_policy = _on_context(policies.replace_policy)
    policy_impact = _on_context(policies.policy_impact)
