"""A media worker on the fake reactor: the call process's worker protocol and a `WorkerMedia` joined by
frames. Commands are carried out when written; reports cross on the next reactor turn, as they would
cross a pipe (never synchronously: a report can cross a command going the other way).

Used by the shell harness when a test asks for `rtp: workers: 1`: the whole shell then runs on the
media worker plane (acd.calls.remote_media) without processes, and every shell test can check that
the worker plane behaves as the in-process one.
"""

from __future__ import annotations

from acd.calls.media_worker import WorkerMedia
from acd.media import worker_wire as wire

__all__ = ["LoopbackWorkers"]


class _Pipe:
    """What the worker's process protocol writes to: `write` reaches the worker on the next turn."""

    def __init__(self, starter: "LoopbackWorkers", worker, media: WorkerMedia) -> None:
        self.starter = starter
        self.worker = worker
        self.media = media
        self.decoder = wire.FrameDecoder()
        self.pid = 90000 + len(starter.pipes)
        self.closed = False

    def write(self, data: bytes) -> None:
        """Commands are carried out at once (a pipe is quicker than any peer on the network the tests
        script); reports come back on the next turn."""
        if self.closed:
            return
        for message in self.decoder.feed(data):
            self.media.handle(message)

    def closeStdin(self) -> None:  # noqa: N802 - Twisted API
        self.closed = True

    def signalProcess(self, name: str) -> None:  # noqa: N802 - Twisted API
        """The worker dies: its ports close and the call side hears of it on the next turn."""
        if self.closed:
            return
        self.closed = True
        for leg_id in list(self.media.legs):
            self.media.handle((wire.CLOSE, leg_id))
        self.starter.reactor.callLater(0, self.worker.processEnded, _Ended(f"killed by {name}"))


class _Ended:
    def __init__(self, text: str) -> None:
        self.value = RuntimeError(text)


class LoopbackWorkers:
    """`start_worker` for RemoteMediaPorts: each worker runs as a WorkerMedia on `reactor`."""

    def __init__(self, reactor, address: str) -> None:
        self.reactor = reactor
        self.address = address
        self.pipes: list[_Pipe] = []

    def __call__(self, worker) -> None:
        reactor = self.reactor
        decoder = wire.FrameDecoder()

        def report(message: tuple) -> None:
            data = wire.encode(message)
            reactor.callLater(0, lambda: pipe.closed or [worker.plane.report(worker, m) for m in decoder.feed(data)])

        media = WorkerMedia(reactor, address=self.address, send=report, ports=range(0),
                            bindable=lambda address, port: port not in reactor.taken_ports)
        media.ports = worker.ports
        pipe = _Pipe(self, worker, media)
        self.pipes.append(pipe)
        worker.makeConnection(pipe)
        media.probe_ports()
