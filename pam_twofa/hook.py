"""PAM entry points, for Debian's pam_python.so.

    auth required pam_python.so /usr/lib/python3/dist-packages/pam_twofa/hook.py [args]

pam_python runs this file inside sshd, login or su, as root, in the system's python3,
and compiles it from source at every login: so it holds only the entry points, and
pam_sm_authenticate hands over to pam_twofa.entry, which comes byte-compiled (the
package is found next to this file, since pam_python loads it by path).

Only pam_sm_authenticate imports the package. pam_python starts a Python of its own in
every process that calls into this file, and sshd calls pam_setcred from its monitor, a
process other than the one that authenticated: that call should cost the interpreter
start and nothing more (the shipped PAM files go further and skip it; see config/pam.d).
"""

import os
import sys

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _PACKAGE_PARENT not in sys.path:
    sys.path.insert(0, _PACKAGE_PARENT)


def pam_sm_authenticate(pamh, flags, argv):  # type: ignore[no-untyped-def]
    try:
        from pam_twofa import entry

        return entry.authenticate(pamh, list(argv))
    except BaseException:  # the package cannot even be imported: no login unchecked
        try:
            import syslog
            import traceback

            syslog.openlog("pam_twofa", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
            syslog.syslog(syslog.LOG_WARNING, "internal error: " + traceback.format_exc(limit=6))
            syslog.closelog()
        except BaseException:  # noqa: S110
            pass
        return pamh.PAM_SERVICE_ERR


def pam_sm_setcred(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_SUCCESS  # no credentials of our own to set


def pam_sm_acct_mgmt(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE


def pam_sm_open_session(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE


def pam_sm_close_session(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE


def pam_sm_chauthtok(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE
