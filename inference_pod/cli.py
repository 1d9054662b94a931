"""`voiceflow serve` and `voiceflow stream`. Only argparse is imported at module level so
`voiceflow --help` stays fast; the handlers import the server or client when they run.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the real-time diarization server (WebSocket /ws/stream, POST /infer)",
        description="Settings come from VOICEFLOW_* environment variables; flags override them.",
    )
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=None, help="port (default 3000)")
    serve.add_argument(
        "--model",
        dest="model_path",
        default=None,
        help="model .onnx file or mounted directory, watched for hot reload (default: bundled)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes behind the one port, each with its own model (default: one per CPU; env "
        "VOICEFLOW_PROCESSES)",
    )
    serve.add_argument(
        "--threads", type=int, default=None, help="engine threads per worker process (env VOICEFLOW_WORKERS)"
    )
    serve.set_defaults(handler=_serve)

    stream = subparsers.add_parser(
        "stream",
        help="stream an audio file (or the microphone) to a server and print segments live",
        description="Stream FILE, or with --mic the default input device, to a pod's /ws/stream.",
    )
    stream.add_argument("file", nargs="?", help="audio file (WAV/FLAC/OGG); leave out with --mic")
    stream.add_argument(
        "--mic",
        action="store_true",
        help="stream the default input device live (needs voiceflow[mic]); Ctrl-C ends it and prints the result",
    )
    stream.add_argument("--device", help="with --mic: input device name or index (default: the system's default)")
    stream.add_argument(
        "--seconds", type=float, help="with --mic: stop after this many seconds (default: until Ctrl-C)"
    )
    stream.add_argument("--url", default="ws://localhost:3000/ws/stream", help="server WebSocket URL")
    stream.add_argument(
        "--speed", type=float, default=1.0, help="x real time (0 = as fast as the server allows: the pace it announces)"
    )
    stream.add_argument("--fast", action="store_true", help="stream at 3x real time (within the server's bound)")
    stream.add_argument("--chunk-ms", type=int, default=100, help="frame length in milliseconds")
    stream.add_argument("--token", default=None, help="JWT for a server with auth on")
    stream.add_argument("--rttm", default=None, help="write the final segments as RTTM here")
    stream.set_defaults(handler=_stream)


def _serve(args: argparse.Namespace) -> int:
    import sys

    from inference_pod.serve import serve
    from inference_pod.settings import Settings

    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, model_path=args.model_path, processes=args.workers, workers=args.threads
        )
    except ValueError as exc:
        print(f"voiceflow serve: error: configuration: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def _stream(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from inference_pod.client import load_file, print_message, stream_samples

    if args.mic == bool(args.file):
        print("voiceflow stream: error: give an audio FILE or --mic (one of them)", file=sys.stderr)
        return 2
    if (args.device is not None or args.seconds is not None) and not args.mic:
        print("voiceflow stream: error: --device and --seconds go with --mic", file=sys.stderr)
        return 2
    if args.mic:
        return _finish_stream(args, _stream_microphone(args), "microphone")
    try:
        samples = load_file(args.file)
    except ValueError as exc:  # voiceflow.audio.AudioError: missing, empty, corrupt or not audio
        print(f"voiceflow stream: error: {exc}", file=sys.stderr)
        return 1
    speed = 3.0 if args.fast else args.speed
    stream = stream_samples(
        samples, args.url, speed=speed, chunk_seconds=args.chunk_ms / 1000.0, token=args.token, on_message=print_message
    )
    return _finish_stream(args, stream, Path(args.file).stem)


async def _stream_microphone(args: argparse.Namespace) -> Any:
    """Capture until Ctrl-C (or --seconds), streaming as it goes; the end still gets its `final`."""
    import asyncio
    import contextlib
    import signal
    import sys

    from inference_pod import mic
    from inference_pod.client import print_message, stream_source

    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    source = mic.open_microphone(device)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers off the main thread
        loop.add_signal_handler(signal.SIGINT, source.stop)
    if args.seconds is not None:
        loop.call_later(args.seconds, source.stop)
    listening = f"listening on {source.name} at {source.sample_rate} Hz; Ctrl-C ends the stream"
    print(f"voiceflow stream: {listening}", file=sys.stderr)
    try:
        return await stream_source(source, source.sample_rate, args.url, token=args.token, on_message=print_message)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


def _finish_stream(args: argparse.Namespace, stream: Any, uri: str) -> int:
    """Run a client stream; one error line for every way it can fail; --rttm writes the result."""
    import asyncio
    import sys

    from websockets.exceptions import InvalidStatus

    from inference_pod.mic import MicrophoneError

    try:
        outcome = asyncio.run(stream)
    except MicrophoneError as exc:
        print(f"voiceflow stream: error: {exc}", file=sys.stderr)
        return 1
    except InvalidStatus as exc:  # refused before the handshake: auth, limits, overload, draining
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        print(f"voiceflow stream: error: refused: HTTP {exc.response.status_code} {body}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"voiceflow stream: error: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    if outcome.errors or outcome.final is None:
        print(
            f"voiceflow stream: error: stream ended without a final result (close code {outcome.close_code})",
            file=sys.stderr,
        )
        return 1
    if args.rttm:
        from voiceflow.rttm import write_rttm
        from voiceflow.segments import Segment

        segs = [Segment(s["start"], s["end"], s["speaker"], True) for s in outcome.final]
        write_rttm(args.rttm, segs, uri=uri)
    return 0
