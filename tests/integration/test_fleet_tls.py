"""TLS to the fleet's database: `sslmode=verify-full` against a real PostgreSQL server
with a certificate for 127.0.0.1; a certificate that does not verify is a configuration
error, refused for good, never `unavailable` (which `fail=open` would turn into logins
without a code: exactly what a man in the middle would want).

The certificates are made by openssl for the test; the server is a real PostgreSQL of
the test's own, its TLS switched on before it starts.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from support.daemon import Daemon
from support.enrollment import enroll_at_step
from support.oath import oathtool
from support.postgres import Cluster, owner

PERIOD = 30


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def authority(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate authority of the test's own: its certificate and its key."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return cert, key


def server_certificate(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, signed by `ca`."""
    cert, key, request = directory / "server.pem", directory / "server.key", directory / "s.csr"
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(request))  # fmt: skip
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert))  # fmt: skip
    return cert, key


def with_tls(cluster: Cluster, directory: Path) -> Path:
    """TLS switched on in `cluster` (not yet started); the CA that signed its certificate."""
    ca = authority(directory, "test-ca")
    cert, key = server_certificate(directory, ca)
    server = owner()
    for made in (cert, key):
        target = cluster.data / made.name
        target.write_bytes(made.read_bytes())
        os.chown(target, server.pw_uid, server.pw_gid)
        target.chmod(0o600)
    with open(cluster.data / "postgresql.conf", "a") as conf:
        conf.write("ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n")
    return ca[0]


@pytest.fixture
def tls_cluster(postgres_cluster: Callable[[], Cluster], tmp_path: Path) -> tuple[Cluster, Path]:
    cluster = postgres_cluster()
    ca = with_tls(cluster, tmp_path)
    return cluster.start(), ca


def test_a_store_reached_with_verify_full_serves_logins(
    tls_cluster: tuple[Cluster, Path], tmp_path: Path
) -> None:
    cluster, ca = tls_cluster
    database = cluster.new_database()
    url = f"{database.uri}&sslmode=verify-full&sslrootcert={ca}"
    (tmp_path / "a").mkdir()
    daemon = Daemon(tmp_path / "a", "--store", url).start()
    try:
        secret, step, _ = enroll_at_step(daemon, "root")
        code = oathtool(secret, (step + 1) * PERIOD)
        assert daemon.request("verify", user="root", code=code)["result"] == p.ACCEPTED
        ssl_in_use = cluster.execute(
            "SELECT bool_or(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
            "WHERE application_name = 'twofad'"
        )
        assert ssl_in_use == [(True,)]
    finally:
        daemon.stop()


def test_a_certificate_that_does_not_verify_is_a_configuration_error_not_an_outage(
    tls_cluster: tuple[Cluster, Path], tmp_path: Path
) -> None:
    cluster, _ = tls_cluster
    database = cluster.new_database()
    stranger, _ = authority(tmp_path, "someone-else")  # not the CA that signed the server's
    url = f"{database.uri}&sslmode=verify-full&sslrootcert={stranger}"
    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError) as caught:
        Daemon(tmp_path / "a", "--store", url).start(timeout=15)
    assert "configuration error" in str(caught.value)
    assert "certificate" in str(caught.value).lower()
    assert cluster.password not in str(caught.value)
