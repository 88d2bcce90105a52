"""`make demo`: pam-twofa end to end on this machine, for someone trying it.

Starts twofad on a temporary state directory with the shipped policy made strict
(`default: required`), a throwaway sshd on 127.0.0.1:2222 whose PAM stack is password
then code through the hook, and a demo user with a printed password. The first login
walks through enrollment (scan the QR code with a phone); later logins ask for a code.
Ctrl-C stops what it started and removes the PAM file, the sshd files and the user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOOK = REPO / "pam_twofa" / "hook.py"
PORT = 2222
USER = "twofa-demo"
SERVICE = "sshd-twofa-demo"
PAM_FILE = Path("/etc/pam.d") / SERVICE


def main() -> int:
    if os.geteuid() != 0:
        print("make demo needs root: it adds a user, a PAM service and an sshd.", file=sys.stderr)
        return 2
    for path, what in ((PAM_FILE, "PAM service"), (Path("/home") / USER, "home directory")):
        if path.exists():
            print(f"{path} exists: is another demo running? ({what})", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="twofa-demo-"))
    work.chmod(0o755)  # the socket must be reachable by the demo user's twofa command
    started: list[subprocess.Popen[bytes]] = []
    user_added = False
    try:
        policy = work / "policy.yaml"
        shipped = (REPO / "config" / "policy.yaml").read_text()
        policy.write_text(shipped.replace("\ndefault: optional\n", "\ndefault: required\n"))
        socket_path = work / "twofad.sock"
        started.append(start_daemon(work, policy, socket_path))
        password = secrets.token_urlsafe(9)
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
        user_added = True
        subprocess.run(["chpasswd"], input=f"{USER}:{password}\n", text=True, check=True)
        write_pam_file(socket_path)
        started.append(start_sshd(work))
        explain(password, socket_path)
        while all(proc.poll() is None for proc in started):
            time.sleep(0.5)
        print("A demo process stopped unexpectedly; see the log in", work, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping the demo.")
        return 0
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        PAM_FILE.unlink(missing_ok=True)
        if user_added:
            subprocess.run(["userdel", "--remove", USER], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def start_daemon(work: Path, policy: Path, socket_path: Path) -> subprocess.Popen[bytes]:
    log = open(work / "twofad.log", "wb")  # noqa: SIM115 (kept open for the daemon's life)
    command = [sys.executable, "-m", "twofad", "--socket", str(socket_path)]
    command += ["--state-dir", str(work / "state"), "--policy", str(policy)]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        if socket_path.exists():
            return proc
        if proc.poll() is not None:
            raise SystemExit(f"twofad did not start:\n{(work / 'twofad.log').read_text()}")
        time.sleep(0.1)
    raise SystemExit("twofad did not start within 10 s")


def write_pam_file(socket_path: Path) -> None:
    PAM_FILE.write_text(
        "# pam-twofa demo (make demo); removed when the demo stops\n"
        "auth     requisite pam_unix.so\n"
        f"auth     required  pam_python.so {HOOK} socket={socket_path}\n"
        "account  required  pam_unix.so\n"
        "session  required  pam_permit.so\n"
    )


def start_sshd(work: Path) -> subprocess.Popen[bytes]:
    host_key = work / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    config = work / "sshd_config"
    config.write_text(
        f"Port {PORT}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {work}/sshd.pid\n"
        "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n"
        "PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive:pam\n"
        "PermitRootLogin no\nUseDNS no\nPrintMotd no\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    program = work / SERVICE  # OpenSSH takes its PAM service name from argv[0]
    program.symlink_to("/usr/sbin/sshd")
    log = open(work / "sshd.log", "wb")  # noqa: SIM115 (kept open for sshd's life)
    proc = subprocess.Popen(
        [str(program), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    time.sleep(0.5)
    if proc.poll() is not None:
        raise SystemExit(
            f"sshd did not start (port {PORT} in use?):\n{(work / 'sshd.log').read_text()}"
        )
    return proc


def explain(password: str, socket_path: Path) -> None:
    print(
        f"""
pam-twofa demo is running: twofad, and sshd on 127.0.0.1:{PORT} with 2FA required.

  user:      {USER}
  password:  {password}

Log in from another terminal:

  ssh -p {PORT} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null {USER}@127.0.0.1

The first login asks for the password, then shows a QR code to scan with an
authenticator app (Google Authenticator, Aegis, FreeOTP, ...) and asks for a code to
confirm; it prints recovery codes and lets you in. Later logins ask for the password
and a code. Watch the daemon's view with:

  {REPO}/.venv/bin/twofactl --socket {socket_path} status
  {REPO}/.venv/bin/twofactl --socket {socket_path} policy explain {USER} --from 127.0.0.1

Press Ctrl-C here to stop; the demo user, its PAM file and sshd are removed.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
