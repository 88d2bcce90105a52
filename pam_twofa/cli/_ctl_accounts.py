"""twofactl's commands on accounts: set-up, status, codes, lock-outs, switching off.

Each handler sends one request (enroll.begin, status, verify, ...) and prints its answer
for a person or, with --json, for a program; COMMANDS lists them with their arguments,
in the order --help shows them. Who may do which is the daemon's to decide. The
`device` commands are twofa's too (_devices).
"""

from __future__ import annotations

import argparse

from ..client import Client
from ..vocabulary import PENDING, STATE_LABELS
from . import _common, _delivery, _devices, _email
from ._common import Command, arg
from .asuser import Person

VERIFY_EXIT = {"accepted": 0}

ENROLLMENT_KEYS = (
    *("user", "secret", "uri", "qr", "qr_image"),
    *("issuer", "algorithm", "digits", "period"),
)


def _last_login(status: dict[str, object]) -> str:
    """When, and on which host (one store serves a fleet)."""
    when = _common.when(status.get("last_success"))  # type: ignore[arg-type]
    host = status.get("last_host")
    return f"{when} on {host}" if host and status.get("last_success") else when


def _enroll(client: Client, args: argparse.Namespace) -> int:
    return _begin(client, args, replace=False)


def _reset(client: Client, args: argparse.Namespace) -> int:
    return _begin(client, args, replace=True, code=args.code)


def _begin(
    client: Client, args: argparse.Namespace, *, replace: bool, code: str | None = None
) -> int:
    """A new pending key: shown, and on a terminal confirmed there and then."""
    device = _devices.checked_name(args.device) if args.device else None
    data = client.request(
        "enroll.begin", user=args.user, replace=replace or None, code=code, device=device
    )
    if args.json:
        _common.print_json({key: data[key] for key in (*ENROLLMENT_KEYS, "device")})
        return 0
    _delivery.show_enrollment(data)
    print()
    if replace:
        print(
            "The current devices keep working until this key is confirmed; then it replaces them."
        )
    if not _delivery.on_terminal():
        confirm = f"twofactl confirm {args.user} CODE"
        if device or replace:  # another device may be pending: say which
            confirm = _devices.confirm_command(SIDE, args, str(data["device"]))
        print(f"Then confirm with: {confirm}")
        return 0
    confirmed = _delivery.confirm_interactively(client, args.user, device=data.get("device"))
    if confirmed is None:
        return _common.fail("twofactl", "not confirmed; the new key stays pending")
    print(f"Two-step verification is now active for {args.user} with this key.")
    _delivery.show_recovery_codes(confirmed["recovery_codes"])
    return 0


def _confirm(client: Client, args: argparse.Namespace) -> int:
    """A pending key switched on: a first set-up (recovery codes come), or a device added."""
    device = _devices.checked_name(args.device) if args.device else None
    data = _devices.request(
        SIDE, client, args, "enroll.confirm", user=args.user, code=args.code, device=device
    )
    codes = data.get("recovery_codes")
    if args.json:
        shown = {key: data.get(key) for key in ("user", "device", "state")}
        if codes is not None:
            shown["recovery_codes"] = codes
        _common.print_json(shown)
        return 0
    if codes is None:
        print(f"{data.get('device')} of {args.user} is now active: its codes log in.")
        return 0
    print(f"Two-step verification is now active for {args.user}.")
    _delivery.show_recovery_codes(codes)
    return 0


def _verify(client: Client, args: argparse.Namespace) -> int:
    data = client.request(
        "verify", user=args.user, code=args.code, service=args.service, rhost=args.rhost
    )
    result = data["result"]
    if args.json:
        _common.print_json(data)
    elif result == "locked":
        print(f"{args.user}: locked ({_common.lock_text({'locked': True, **data})})")
    else:
        print(f"{args.user}: {result}")
    return VERIFY_EXIT.get(result, 1)


def _status(client: Client, args: argparse.Namespace) -> int:
    if args.users:
        statuses = [client.request("status", user=user) for user in args.users]
    else:
        statuses = _common.request_all_pages(client, "list", "users")["users"]
    if args.state:
        statuses = [s for s in statuses if s["state"] == args.state]
    if args.json:
        _common.print_json(statuses)
        return 0
    rows = [
        (
            "USER",
            "STATE",
            "RULE",
            "DEVICES",
            "ENROLLED",
            "LAST LOGIN",
            "FAILURES",
            "STRIKES",
            "LOCK",
        )
    ]
    for s in statuses:
        state = STATE_LABELS.get(s["state"], s["state"])
        if s.get("renewal_pending"):
            state += " (new key pending)"
        elif s.get("enrollment") == PENDING:
            state += " (set-up pending)"
        rows.append(
            (
                s["user"],
                state,
                s.get("rule", "-"),
                _device_count(s),
                _common.when(s.get("enrolled_at")),
                _last_login(s),
                str(s.get("failures", 0)),
                _strikes(s),
                _common.lock_text(s),
            )
        )
    _common.print_table(rows)
    for s in statuses if args.users else ():  # the users asked for by name: their devices
        for line in _email.address_lines(s, f"{s['user']}: "):
            print(line)
        if s.get("devices"):
            print()
            print(f"Devices of {s['user']}:")
            _devices.print_devices(s["devices"], "  ")
    return 0


def _device_count(status: dict[str, object]) -> str:
    """How many devices make codes that log in, and how many wait for a confirmation."""
    devices = status.get("devices")
    if not isinstance(devices, list) or not devices:
        return "-"
    pending = sum(1 for device in devices if device.get("state") == PENDING)
    active = len(devices) - pending
    return f"{active} (+{pending} pending)" if pending else str(active)


def _strikes(status: dict[str, object]) -> str:
    """The lifetime count against its limit, `3/100`: how close the hard lock is.

    FAILURES beside it is the count in a row, which a success resets and the back-off
    follows; strikes stay until an unlock or a new key (see lockout.hard_after).
    """
    if "strikes" not in status:
        return "-"
    return f"{status['strikes']}/{status.get('hard_after', '?')}"


def _disable(client: Client, args: argparse.Namespace) -> int:
    data = client.request("disable", user=args.user, code=args.code)
    if args.json:
        _common.print_json(data)
    else:
        print(
            f"Two-step verification is off for {args.user}; "
            "their secret and recovery codes are gone."
        )
    return 0


def _unlock(client: Client, args: argparse.Namespace) -> int:
    data = client.request("unlock", user=args.user)
    if args.json:
        _common.print_json(data)
    else:
        print(f"{args.user} is unlocked; the failure count is back to 0.")
    return 0


def _recovery_codes(client: Client, args: argparse.Namespace) -> int:
    target = None
    if args.output:
        try:
            owner = Person.named(args.user)
        except KeyError:
            return _common.fail("twofactl", f"--output: {args.user} has no account to own the file")
        target = _delivery.open_recovery_file(args.output, owner)  # written as the user, see files
    return _delivery.regenerate_recovery_codes(
        client, target, as_json=args.json, user=args.user, code=args.code
    )


def _resync(client: Client, args: argparse.Namespace) -> int:
    data = client.request("resync", user=args.user, code1=args.code1, code2=args.code2)
    if args.json:
        _common.print_json(data)
    elif data["result"] == "accepted":
        print(f"{args.user}: clock offset set to {data['drift']} steps of the code period.")
    else:
        print(f"{args.user}: {data['result']}: no two consecutive codes within 10 minutes")
    return 0 if data["result"] == "accepted" else 1


# --code: an administrator acting on their own account proves it, as anyone must.
OWN_CODE = arg("--code", help="a current code of USER's: needed only when USER is you (not root)")
USER = arg("user")
DEVICE = arg("--device", metavar="NAME", help="the device's name (default: phone)")
SIDE = _devices.Side(
    "twofactl",
    user=lambda args: str(args.user),
    proof=lambda args: args.code,
    names_user=True,
    add_keys=(*ENROLLMENT_KEYS, "device"),
)

COMMANDS = (
    Command(
        "enroll",
        _enroll,
        "start setting up a user: new key, QR code",
        "twofactl enroll alice --device phone",
        (USER, DEVICE),
    ),
    Command(
        "confirm",
        _confirm,
        "finish a set-up, or a device added, with a code from it; a set-up prints recovery codes",
        "twofactl confirm alice 123456",
        (
            USER,
            arg("code"),
            arg("--device", metavar="NAME", help="the new device (needed if several are pending)"),
        ),
    ),
    Command(
        "verify",
        _verify,
        "check a code as a login would (root only); consumes it",
        "twofactl verify alice 123456",
        (
            USER,
            arg("code"),
            arg("--service", help="PAM service to report (for the log)"),
            arg("--rhost", help="remote host to report (for the log)"),
        ),
    ),
    Command(
        "status",
        _status,
        "list enrolled users and those the policy requires: state, rule, devices, last login, "
        "counts, lock",
        "twofactl status --state incomplete",
        (
            arg("users", nargs="*", metavar="USER"),
            arg("--state", choices=tuple(STATE_LABELS), help="only users in this state"),
        ),
    ),
    Command(
        "disable",
        _disable,
        "switch two-step verification off for a user: every device and recovery code goes",
        "twofactl disable alice",
        (USER, OWN_CODE),
    ),
    Command(
        "unlock", _unlock, "lift a lock-out after failed codes", "twofactl unlock alice", (USER,)
    ),
    Command(
        "reset",
        _reset,
        "give a user a new key that replaces every device; the old ones work until it is confirmed",
        "twofactl reset alice",
        (USER, DEVICE, OWN_CODE),
    ),
    Command(
        "recovery-codes",
        _recovery_codes,
        "make a user's new single-use recovery codes (the old ones stop working)",
        "twofactl recovery-codes alice --regenerate --output /home/alice/recovery-codes.txt",
        (
            USER,
            arg(
                "--regenerate",
                action="store_true",
                required=True,
                help="required: replace the codes",
            ),
            arg(
                "--output",
                metavar="FILE",
                help="write them to FILE (.txt, mode 0600), as the user: "
                "only where they could write",
            ),
            OWN_CODE,
        ),
    ),
    Command(
        "resync",
        _resync,
        "fix a phone whose clock is off: two consecutive codes, searched within 10 minutes",
        "twofactl resync alice 123456 654321",
        (USER, arg("code1"), arg("code2")),
    ),
    _devices.group(
        SIDE,
        (USER,),
        (OWN_CODE,),
        (
            "twofactl device list alice",
            "twofactl device add alice tablet",
            "twofactl device rename alice phone 'old phone'",
            "twofactl device remove alice 'old phone'",
        ),
    ),
)
