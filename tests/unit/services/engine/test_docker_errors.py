"""The one line a user reads when Docker cannot be used, by cause."""

from __future__ import annotations

import requests

from services.engine.docker_api import docker_unavailable


def test_a_socket_this_user_may_not_open_is_named_with_its_fix_not_start_docker():
    # docker-py's shape of EACCES on /var/run/docker.sock (seen from the compose stack's app).
    error = requests.exceptions.ConnectionError(
        ("Connection aborted.", PermissionError(13, "Permission denied")))

    message = str(docker_unavailable(error))

    assert message.startswith("This user may not use the Docker socket (")
    assert "DOCKER_GID=$(stat -c %g /var/run/docker.sock)" in message
    assert "Start Docker" not in message and "\n" not in message


def test_a_daemon_that_does_not_answer_says_start_docker():
    message = str(docker_unavailable(ConnectionRefusedError(111, "Connection refused")))

    assert message.startswith("The Docker daemon is not reachable ([Errno 111] Connection refused)")
    assert "Start Docker" in message
