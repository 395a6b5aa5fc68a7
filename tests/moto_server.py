"""The moto server the tests and benchmarks talk to: on 127.0.0.1, with every call it receives recorded."""

import logging

from moto.server import ThreadedMotoServer

from tests.call_recorder import CallRecorder

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def start_moto(recorder: CallRecorder) -> tuple[ThreadedMotoServer, str]:
    """Starts a server on a free port; returns it and its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    server._server.app = recorder.middleware(server._server.app)  # type: ignore[union-attr]
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"
