"""A case-insensitive passwd directory, as SSSD (`case_sensitive = false`) or winbind give one.

A tiny NSS module, built by the test with gcc, answers getpwnam for any spelling of a
local account's name (strcasecmp over /etc/passwd) with the account's real entry, its
real pw_name included; everything else (getpwuid, groups, initgroups) stays with
`files`. It is used only inside a private mount namespace, where a copy of
nsswitch.conf with `passwd: files twofatestci` is bind-mounted over /etc/nsswitch.conf:
the machine's own file, and every process outside the namespace, never see it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MODULE = "twofatestci"

_SOURCE = r"""
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int copy(const char *text, char **buffer, size_t *left, char **out) {
    size_t size = strlen(text) + 1;
    if (size > *left) return -1;
    memcpy(*buffer, text, size);
    *out = *buffer;
    *buffer += size;
    *left -= size;
    return 0;
}

enum nss_status _nss_twofatestci_getpwnam_r(const char *name, struct passwd *result,
                                             char *buffer, size_t buflen, int *errnop) {
    FILE *passwd = fopen("/etc/passwd", "re");
    if (passwd == NULL) {
        *errnop = errno;
        return NSS_STATUS_UNAVAIL;
    }
    struct passwd entry, *found;
    char line[4096];
    enum nss_status status = NSS_STATUS_NOTFOUND;
    while (fgetpwent_r(passwd, &entry, line, sizeof line, &found) == 0) {
        if (strcasecmp(entry.pw_name, name) != 0) continue;
        *result = entry;
        if (copy(entry.pw_name, &buffer, &buflen, &result->pw_name) ||
            copy(entry.pw_passwd, &buffer, &buflen, &result->pw_passwd) ||
            copy(entry.pw_gecos, &buffer, &buflen, &result->pw_gecos) ||
            copy(entry.pw_dir, &buffer, &buflen, &result->pw_dir) ||
            copy(entry.pw_shell, &buffer, &buflen, &result->pw_shell)) {
            *errnop = ERANGE;
            status = NSS_STATUS_TRYAGAIN;
        } else {
            status = NSS_STATUS_SUCCESS;
        }
        break;
    }
    fclose(passwd);
    return status;
}
"""

# Inside the namespace: our nsswitch.conf over the machine's; an nscd socket, if any,
# hidden so that glibc asks the modules itself; then the command.
_SCRIPT = (
    'mount --bind "$1" /etc/nsswitch.conf && shift'
    " && { [ ! -d /run/nscd ] || mount -t tmpfs tmpfs /run/nscd; }"
    ' && exec "$@"'
)


@dataclass(frozen=True)
class FoldingDirectory:
    """The built module and its nsswitch.conf; `inside` runs a command where they apply."""

    library_dir: Path
    nsswitch: Path

    def inside(self, argv: Sequence[str]) -> list[str]:
        """`argv` in its own private mount namespace, with names matched case-insensitively."""
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "env",
            f"LD_LIBRARY_PATH={self.library_dir}",
            "sh",
            "-c",
            _SCRIPT,
            "sh",
            str(self.nsswitch),
            *argv,
        ]


def build(directory: Path) -> FoldingDirectory:
    """Compile libnss_twofatestci.so.2 into `directory` and write the nsswitch.conf for it."""
    source = directory / f"nss_{MODULE}.c"
    source.write_text(_SOURCE)
    library = directory / f"libnss_{MODULE}.so.2"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    machine = Path("/etc/nsswitch.conf").read_text()
    text, found = re.subn(r"(?m)^passwd:.*$", f"passwd: files {MODULE}", machine)
    nsswitch = directory / "nsswitch.conf"
    nsswitch.write_text(text if found else f"{machine}\npasswd: files {MODULE}\n")
    nsswitch.chmod(0o644)
    return FoldingDirectory(directory, nsswitch)
