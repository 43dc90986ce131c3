"""Serving beyond loopback needs HTTPS or an explicit acknowledgement, and the host and origin
checks still hold on 0.0.0.0."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import REPO_ROOT
from tests.integration.api.conftest import ADMIN_PASSWORD, free_port, serve, shutdown

pytestmark = pytest.mark.integration


def test_a_network_address_without_https_or_acknowledgement_is_refused(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "app", "--address", "0.0.0.0", "--port", str(free_port()),
         "--state-dir", str(tmp_path / "state")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --address 0.0.0.0 makes the workbench reachable from the network: serve HTTPS "
        "with --certfile and --keyfile, or acknowledge plain HTTP with --insecure-http.")
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def on_all_interfaces(tmp_path_factory, readable_catalog, new_database_url):
    served = serve(tmp_path_factory.mktemp("api-all"), readable_catalog,
                   {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
                   ["--address", "0.0.0.0", "--insecure-http"], database_url=new_database_url())
    yield served
    shutdown(served)


def test_on_all_interfaces_other_hosts_and_origins_are_still_refused(on_all_interfaces):
    served = on_all_interfaces
    session = requests.Session()
    signed_in = session.post(f"{served.url}/login", data={
        "username": "admin", "password": ADMIN_PASSWORD}, allow_redirects=False)
    cookie = f"workbench_session={session.cookies['workbench_session']}"
    socket_url = served.url.replace("http", "ws") + "/runs/ws"

    def open_socket(origin: str) -> str:
        """The first message of the page's websocket, opened with a real session token."""
        token = re.search(r'"token":\s*"([^"]+)"', session.get(f"{served.url}/runs").text)[1]
        with connect(socket_url, origin=origin, additional_headers={"Cookie": cookie},
                     subprotocols=["bokeh", token]) as socket:
            return socket.recv(timeout=10)

    rebound = requests.get(f"{served.url}/api/v1/health/live", headers={"Host": "evil.example"})
    own = open_socket(served.url)
    with pytest.raises(InvalidStatus) as foreign:
        open_socket("http://evil.example")

    assert signed_in.status_code == 303
    assert '"msgtype": "ACK"' in own
    assert "WARNING: serving plain HTTP on 0.0.0.0" in served.log.read_text()
    assert rebound.status_code == 400
    assert foreign.value.response.status_code == 403
