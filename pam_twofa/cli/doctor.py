"""`twofactl doctor`: is two-step verification really in force, and what to fix if not.

Each check looks at one thing an administrator can get wrong: the daemon, the policy,
where the hook sits in the PAM stacks, what sshd really runs (`sshd -T`), the clock,
the files that guard the secrets, and whether an administrator can still log in.
The PAM files and sshd's settings are read by pamconf and sshdconf; here they are judged.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from ..client import Client, ClientError
from . import pamconf, sshdconf

PAM_DIR = "/etc/pam.d"
TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        text = f"{mark} {self.check}: {self.detail}"
        return f"{text} — fix: {self.fix}" if not self.ok and self.fix else text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Setup:
    """Where to look: the defaults are the system's own files."""

    sshd_service: str = "sshd"
    login_service: str = "login"
    sshd_config: str | None = None
    sshd_binary: str = "/usr/sbin/sshd"
    pam_dir: str = PAM_DIR


def run_checks(client: Client, setup: Setup) -> list[Check]:
    checks = [_daemon(client)]
    facts = _diagnose(client) if checks[0].ok else None
    checks.append(_policy(client, facts))
    checks.append(pam_stack(setup.pam_dir, setup.sshd_service))
    checks.append(pam_stack(setup.pam_dir, setup.login_service))
    checks.append(sshd_settings(setup))
    checks.append(clock())
    checks.extend(_files(facts))
    checks.append(_administrators(facts))
    checks.append(mailer(facts))
    return checks


# --- the daemon and its policy ---------------------------------------------------------


def _daemon(client: Client) -> Check:
    try:
        client.request("ping")
    except ClientError as exc:
        return Check(
            "daemon",
            False,
            str(exc),
            "start it: systemctl enable --now twofad.socket (or run twofad)",
        )
    return Check("daemon", True, f"twofad answers on {client.path}")


def _diagnose(client: Client) -> dict[str, Any] | None:
    try:
        return client.request("diagnose")
    except ClientError:
        return None


def _policy(client: Client, facts: dict[str, Any] | None) -> Check:
    if facts is None:
        return Check("policy", False, "cannot ask the daemon", "see the daemon check")
    source = str(facts.get("policy_source"))
    if os.path.isfile(source):
        try:
            with open(source, encoding="utf-8") as policy_file:
                client.request("policy.check", text=policy_file.read(), name=source)
        except ClientError as exc:
            message = getattr(exc, "message", str(exc)).splitlines()
            return Check(
                "policy",
                False,
                f"{source} has errors (the daemon keeps its last good policy): {message[0]}",
                f"twofactl policy check {source}, fix it, then twofactl reload",
            )
        except (OSError, UnicodeDecodeError) as exc:
            return Check("policy", False, f"cannot read {source}: {exc}", f"check {source}")
    return Check("policy", True, f"{source}: valid, {facts.get('policy_rules')} rules in force")


def mailer(facts: dict[str, Any] | None) -> Check:
    """Where the policy allows codes by email, the mailer must take messages: otherwise
    every person who types `email` is told the code could not be sent."""
    if facts is None or not facts.get("email_allowed"):
        return Check("mailer", True, "codes by email are off in the policy: no mailer needed")
    path = str(facts.get("mailer_socket"))
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(path)
    except OSError as exc:
        return Check(
            "mailer",
            False,
            f"the policy allows codes by email, but the mailer at {path} does not answer "
            f"({exc.strerror or exc})",
            "configure /etc/twofa/mailer.yaml, then systemctl enable --now twofa-mailer; "
            "twofactl email test ADDRESS",
        )
    return Check("mailer", True, f"codes by email are allowed; the mailer listens on {path}")


# --- PAM --------------------------------------------------------------------------------


def pam_stack(pam_dir: str, service: str) -> Check:
    name = f"PAM {service}"
    try:
        lines = pamconf.auth_lines(pam_dir, service)
    except OSError as exc:
        return Check(name, False, f"cannot read {exc.filename}: {exc.strerror}", "")
    hooks = [index for index, line in enumerate(lines) if pamconf.is_hook(line)]
    example = "auth required pam_python.so /usr/lib/python3/dist-packages/pam_twofa/hook.py"
    if not hooks:
        return Check(
            name,
            False,
            f"the hook is not in the auth stack of {os.path.join(pam_dir, service)}",
            f"add '{example}' (see the examples in /usr/share/doc/pam-twofa)",
        )
    position = hooks[0]
    hook = lines[position]
    if not pamconf.failure_stops_login(hook.control):
        return Check(
            name,
            False,
            f"{hook.origin}: the hook is '{hook.control}', so a wrong code would not stop a login",
            "make it 'required' (or 'requisite')",
        )
    for index, line in enumerate(lines[:position]):
        skipped = pamconf.lines_skipped_on_success(line.control)
        if skipped is not None and index + skipped >= position:
            return Check(
                name,
                False,
                f"{line.origin}: '{line.control} {line.module}' succeeds past the hook, "
                "which then never runs",
                "move the hook before it, or make that line 'required'/'requisite'",
            )
    if "fail=open" in hook.arguments:
        return Check(
            name,
            False,
            f"{hook.origin}: the hook has fail=open, so while twofad is down or busy a "
            "login needs no code",
            "remove fail=open (the default, fail=secure, refuses logins it cannot check)",
        )
    return Check(name, True, f"{hook.origin}: the hook runs ({hook.control})")


# --- sshd ------------------------------------------------------------------------------

# Modules that check something the person knows or has, other than our code.
FIRST_FACTORS = frozenset(
    ("pam_unix.so", "pam_sss.so", "pam_ldap.so", "pam_krb5.so", "pam_winbind.so", "pam_userdb.so")
)


def _code_alone_logs_in(methods: str, setup: Setup) -> str | None:
    """Why a code alone would open an SSH session, or None if something else is asked too.

    A chain of keyboard-interactive alone leaves everything to PAM; if the sshd stack
    has no password module either, the code becomes the only factor.
    """
    alone = [
        c
        for c in methods.split()
        if all(m.startswith("keyboard-interactive") for m in c.split(","))
    ]
    if not alone:
        return None
    try:
        lines = pamconf.auth_lines(setup.pam_dir, setup.sshd_service)
    except OSError:
        return None  # the PAM check says what is wrong with the file
    checked = (line for line in lines if line.control != "optional" and not pamconf.is_hook(line))
    if any(os.path.basename(line.module) in FIRST_FACTORS for line in checked):
        return None
    return (
        f"AuthenticationMethods '{alone[0]}' and no password module in PAM {setup.sshd_service}: "
        "the code alone logs in"
    )


def sshd_settings(setup: Setup) -> Check:
    if not shutil.which(setup.sshd_binary):
        return Check("sshd", False, f"{setup.sshd_binary} not found", "install openssh-server")
    try:
        settings = sshdconf.effective_settings(setup.sshd_binary, setup.sshd_config)
    except sshdconf.Refused as exc:
        fix = "fix sshd's configuration (sshd -t shows the error)"
        if "privilege separation directory" in exc.reason:
            fix = "sshd has not run since boot: systemctl start ssh (or mkdir -m 0755 /run/sshd)"
        return Check("sshd", False, f"sshd -T failed: {exc.reason}", fix)
    problems = []
    if settings.get("usepam") != "yes":
        problems.append("UsePAM is not yes")
    if settings.get("kbdinteractiveauthentication") != "yes":
        problems.append("KbdInteractiveAuthentication is not yes")
    methods = settings.get("authenticationmethods", "any")
    if methods == "any" or any("keyboard-interactive" not in chain for chain in methods.split()):
        problems.append(f"AuthenticationMethods '{methods}' lets a login in without PAM's prompts")
    single = _code_alone_logs_in(methods, setup) if not problems else None
    if single:
        problems.append(single)
    if problems:
        return Check(
            "sshd",
            False,
            "; ".join(problems),
            "use the drop-in from the examples: UsePAM yes, KbdInteractiveAuthentication yes, "
            "AuthenticationMethods publickey,keyboard-interactive:pam (or a password module "
            "before the hook, as in the password-then-code example)",
        )
    return Check("sshd", True, f"UsePAM yes, keyboard-interactive, AuthenticationMethods {methods}")


# --- the clock -------------------------------------------------------------------------


class _Timex(ctypes.Structure):
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_long * 32),
    )


def clock() -> Check:
    """Codes are made from the time: a clock off by a minute refuses every code."""
    synced = _timedatectl()
    if synced is None:
        timex = _Timex()
        state = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.byref(timex))
        synced = state != TIME_ERROR if state >= 0 else None
    if synced:
        return Check("clock", True, "synchronised (NTP)")
    return Check(
        "clock",
        False,
        "not known to be synchronised: codes from phones may not match",
        "enable NTP: timedatectl set-ntp true (or install chrony or systemd-timesyncd)",
    )


def _timedatectl() -> bool | None:
    if not shutil.which("timedatectl"):
        return None
    done = subprocess.run(
        ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    value = done.stdout.strip()
    return {"yes": True, "no": False}.get(value) if done.returncode == 0 else None


# --- the files that guard the secrets, and who can log in ------------------------------


def _files(facts: dict[str, Any] | None) -> list[Check]:
    if facts is None:
        return [Check("key file", False, "cannot ask the daemon", "see the daemon check")]
    checks = []
    daemon_uid = facts.get("daemon_uid")
    for name, label, allowed in (
        ("key_file", "key file", ("0400", "0600")),
        ("state_dir", "state directory", ("0700",)),
    ):
        path = facts.get(name)
        mode = facts.get(f"{name}_mode")
        owner = facts.get(f"{name}_owner_uid")
        if mode is None:
            checks.append(Check(label, False, f"{path}: {facts.get(name + '_error')}", ""))
        elif mode not in allowed or owner not in (0, daemon_uid):
            checks.append(
                Check(
                    label,
                    False,
                    f"{path} is mode {mode}, owner uid {owner}",
                    f"chmod {allowed[0]} {path}; owned by root or the daemon's user",
                )
            )
        else:
            checks.append(Check(label, True, f"{path} mode {mode}"))
    return checks


def _administrators(facts: dict[str, Any] | None) -> Check:
    if facts is None:
        return Check("administrators", False, "cannot ask the daemon", "see the daemon check")
    risk = facts.get("lockout_risk")
    if risk:
        return Check(
            "administrators",
            False,
            str(risk),
            "enroll an administrator (twofactl enroll USER) or set enrollment.at_login: true",
        )
    return Check("administrators", True, "at least one administrator can log in")
