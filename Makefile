# pam-twofa — `make test` sets up everything it uses on a fresh Debian 12 (as root).
SHELL := /bin/bash
PYTHON := /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
APT_PACKAGES := oathtool libpam-python pamtester openssh-server openssh-client sqlite3 \
	libpam-google-authenticator util-linux \
	python3-venv python3-pyotp python3-yaml python3-cryptography python3-segno python3-systemd
STAMP := $(VENV)/.installed

.PHONY: test unit integration lint deps demo bench clean

test: deps lint
	$(VPY) -m pytest -q tests

unit: deps
	$(VPY) -m pytest -q tests/unit

integration: deps
	$(VPY) -m pytest -q tests/integration

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

deps: $(STAMP)

# The virtual environment sees Debian's own python3-* packages (--system-site-packages),
# so the tests run against bookworm's pyotp, PyYAML, cryptography and segno, as the
# .deb will; only the test tools come from PyPI.
$(STAMP): pyproject.toml Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Twofad, an sshd on 127.0.0.1:2222 through the hook, and a demo user; Ctrl-C undoes it all.
demo: deps
	$(VPY) tools/demo.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
