#!/bin/bash
# What the benchmarks use beyond `make deps`, on a fresh Debian 12 (as root):
# the PAM modules they compare with, the tools that drive them, and py-spy for profiles.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(oathtool pamtester libpam-python libpam-google-authenticator libpam-oath
          openssh-server openssh-client)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed' \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# py-spy samples the daemon where a benchmark profiles it; without it they print no profile.
if [ ! -x .venv/bin/py-spy ]; then
    .venv/bin/python -m pip install -q py-spy \
        || echo "bench: py-spy could not be installed: the benchmarks will print no profiles"
fi

# The hook's package byte-compiled, as the Debian package's postinst would leave it
# (this environment may set PYTHONDONTWRITEBYTECODE; pam_python itself never writes any).
env -u PYTHONDONTWRITEBYTECODE /usr/bin/python3 -m compileall -q pam_twofa
