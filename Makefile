# pam-twofa — `make test` sets up everything it uses on a fresh Debian 12 (as root).
SHELL := /bin/bash
PYTHON := /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
APT_PACKAGES := oathtool libpam-python pamtester openssh-server openssh-client sqlite3 \
	libpam-google-authenticator util-linux gcc libc6-dev \
	python3-venv python3-pyotp python3-yaml python3-cryptography python3-segno python3-systemd \
	postgresql python3-psycopg pgbouncer python3-aiosmtpd \
	cockpit-ws cockpit-bridge cockpit-system chromium chromium-driver python3-selenium \
	sudo zbar-tools
STAMP := $(VENV)/.installed

# The second library set: PyPI's newest pyotp, PyYAML, cryptography and segno, in a
# virtual environment that does not see Debian's python3-* packages. systemd-python is
# left out (building it needs libsystemd-dev and a compiler, and its newest release is
# bookworm's 235, which .venv already runs): this set runs the daemon's own sd_notify
# and stderr code paths instead.
PYPI_VENV := .venv-pypi
PYPI_VPY := $(PYPI_VENV)/bin/python
PYPI_STAMP := $(PYPI_VENV)/.installed
PYPI_LIBRARIES := pyotp PyYAML cryptography segno psycopg
# The integration tests that reach those libraries through a real twofad: enrollment
# and QR codes (twofa, twofactl), imports (80-bit keys among them), the key file
# (AES-GCM, HKDF), live policy reloads (YAML), enrollment at login through pam_python
# (the QR code in the PAM conversation), systemd's protocols without systemd-python, the
# fleet's store (psycopg), devices (a key and a QR code for each), and the mailer's
# SMTP with TLS (aiosmtpd, PyPI's on that side).
PYPI_INTEGRATION := tests/integration/test_cli_user.py tests/integration/test_cli_admin.py \
	tests/integration/test_import.py tests/integration/test_key_file.py \
	tests/integration/test_policy_live.py tests/integration/test_hook_pamtester.py \
	tests/integration/test_systemd_protocols.py tests/integration/test_fleet_store.py \
	tests/integration/test_fleet_failover.py tests/integration/test_fleet_pamtester.py \
	tests/integration/test_fleet_pgbouncer.py tests/integration/test_key_rotation.py \
	tests/integration/test_move_into_fleet.py tests/integration/test_fleet_tls.py \
	tests/integration/test_devices_cli.py tests/integration/test_mailer_smtp.py \
	tests/integration/test_email_cli.py tests/integration/test_require_live.py

# The Debian packages: `make deb` builds dist/deb/pam-twofa_VERSION_all.deb and, from the
# same source package, dist/deb/cockpit-twofa_VERSION_all.deb (the web console page), from
# a copy of the sources with packaging/debian as debian/. `make test-deb` installs them
# with apt into a clean bookworm root (debootstrap, cached in .cache/debootstrap/), logs
# in over SSH and loads the page from the root's cockpit-ws.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
DEB_DIR := dist/deb
DEB_SRC := $(DEB_DIR)/build/pam-twofa-$(VERSION)
DEB := $(DEB_DIR)/pam-twofa_$(VERSION)_all.deb
COCKPIT_DEB := $(DEB_DIR)/cockpit-twofa_$(VERSION)_all.deb
DEB_SOURCES := pyproject.toml README.md pam_twofa daemon config cockpit
DEB_BUILD_PACKAGES := dpkg-dev build-essential fakeroot debhelper dh-python \
	pybuild-plugin-pyproject python3-all python3-setuptools \
	python3-cryptography python3-pyotp python3-segno python3-yaml lintian
DEB_TEST_PACKAGES := debootstrap systemd systemd-container oathtool openssh-client util-linux
# Debian's tools with Debian's python3: no pyenv, virtual environment or PYTHONPATH.
DEB_ENV := env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV -u TWOFA_SOCKET PATH=/usr/sbin:/usr/bin:/sbin:/bin

# Install the Debian packages named in $(1) that are missing.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

.PHONY: test unit integration lint deps demo bench clean clean-cache deb test-deb \
	test-pypi deps-pypi fuzz

# The package test runs in the pytest session (tests/integration/test_debian_package.py),
# on the .deb built just before.
test: deps deps-pypi lint deb
	$(call apt_install,$(DEB_TEST_PACKAGES))
	TWOFA_DEB=$(abspath $(DEB)) TWOFA_COCKPIT_DEB=$(abspath $(COCKPIT_DEB)) $(VPY) -m pytest -q tests
	$(PYPI_VPY) -m pytest -q tests/unit $(PYPI_INTEGRATION)

# The unit suite and $(PYPI_INTEGRATION) again, on PyPI's newest libraries.
test-pypi: deps-pypi
	$(PYPI_VPY) -m pytest -q tests/unit $(PYPI_INTEGRATION)

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
	$(call apt_install,$(APT_PACKAGES))
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $(STAMP)

deps-pypi: $(PYPI_STAMP)

# Made from nothing: /usr/bin/python3's venv without --system-site-packages, then the
# newest releases from PyPI (--upgrade, so a remade environment catches up).
$(PYPI_STAMP): pyproject.toml Makefile
	$(call apt_install,$(APT_PACKAGES))
	$(PYTHON) -m venv $(PYPI_VENV)
	$(PYPI_VPY) -m pip install -q --upgrade pip
	$(PYPI_VPY) -m pip install -q --upgrade -e '.[test]' $(PYPI_LIBRARIES)
	touch $(PYPI_STAMP)

# Twofad, an sshd on 127.0.0.1:2222 through the hook, and a demo user; Ctrl-C undoes it all.
demo: deps
	$(VPY) tools/demo.py

deb:
	$(call apt_install,$(DEB_BUILD_PACKAGES))
	@grep -q '^pam-twofa ($(VERSION))' packaging/debian/changelog || \
		{ echo "packaging/debian/changelog: the top entry must be version $(VERSION), as in pyproject.toml"; exit 1; }
	rm -rf $(DEB_DIR)/build
	mkdir -p $(DEB_SRC)
	tar -c --exclude=__pycache__ $(DEB_SOURCES) | tar -x -C $(DEB_SRC)
	cp -r packaging/debian $(DEB_SRC)/debian
	cd $(DEB_SRC) && $(DEB_ENV) dpkg-buildpackage -us -uc -b
	rm -f $(DEB_DIR)/pam-twofa_* $(DEB_DIR)/cockpit-twofa_*
	mv $(DEB_DIR)/build/pam-twofa_$(VERSION)_* $(DEB_DIR)/build/cockpit-twofa_$(VERSION)_* $(DEB_DIR)/
	rm -rf $(DEB_DIR)/build
	$(DEB_ENV) lintian --fail-on error $(DEB) $(COCKPIT_DEB)
	@echo "built $(DEB) $(COCKPIT_DEB)"

# Only the package test: build, install into a bookworm root, log in over SSH, load the
# web console page, purge.
test-deb: deps deb
	$(call apt_install,$(DEB_TEST_PACKAGES))
	TWOFA_DEB=$(abspath $(DEB)) TWOFA_COCKPIT_DEB=$(abspath $(COCKPIT_DEB)) \
		$(VPY) -m pytest -q tests/integration/test_debian_package.py

# Benchmarks, side by side with google-authenticator-libpam (not part of `make test`).
# Each prints its tables and, last, one JSON line (kept in bench/results/NAME.json).
BENCHMARKS := pam_login ssh_login verify_throughput storm scale race bruteforce local_flood fleet failover \
	devices

bench: deps
	bash bench/setup.sh
	@for name in $(BENCHMARKS); do \
		echo; echo "=== bench/$$name.py"; \
		$(VPY) bench/$$name.py || exit 1; \
	done

# Generated input through the decoder, the policy parser, the reading of typed codes
# (a million each by default) and 100,000 requests to a live twofad (not part of
# `make test`). Options after FUZZ_ARGS=, e.g. FUZZ_ARGS="--seed 7 --count 100000".
fuzz: deps
	PYTHONPATH=tests $(VPY) -m fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) $(PYPI_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DEB_DIR)

# The cached bookworm root of test-deb (debootstrap takes a minute or two to remake it).
clean-cache:
	rm -rf .cache/debootstrap
