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
    serve.add_argument("--workers", type=int, default=None, help="engine worker threads")
    serve.set_defaults(handler=_serve)

    stream = subparsers.add_parser("stream", help="stream an audio file to a server and print segments live")
    stream.add_argument("file", help="audio file (WAV/FLAC/OGG)")
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
        settings = Settings.from_env(host=args.host, port=args.port, model_path=args.model_path, workers=args.workers)
    except ValueError as exc:
        print(f"voiceflow serve: configuration error: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def _stream(args: argparse.Namespace) -> int:
    import asyncio
    import sys
    from pathlib import Path

    from websockets.exceptions import InvalidStatus

    from inference_pod.client import load_file, print_message, stream_samples

    try:
        samples = load_file(args.file)
    except ValueError as exc:  # voiceflow.audio.AudioError: missing, empty, corrupt or not audio
        print(f"error: {exc}", file=sys.stderr)
        return 1
    speed = 3.0 if args.fast else args.speed

    try:
        outcome = asyncio.run(
            stream_samples(
                samples,
                args.url,
                speed=speed,
                chunk_seconds=args.chunk_ms / 1000.0,
                token=args.token,
                on_message=print_message,
            )
        )
    except InvalidStatus as exc:  # refused before the handshake: auth, limits, overload, draining
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        print(f"refused: HTTP {exc.response.status_code} {body}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    if outcome.errors or outcome.final is None:
        print(f"stream ended without a final result (close code {outcome.close_code})", file=sys.stderr)
        return 1
    if args.rttm:
        from voiceflow.rttm import write_rttm
        from voiceflow.segments import Segment

        segs = [Segment(s["start"], s["end"], s["speaker"], True) for s in outcome.final]
        write_rttm(args.rttm, segs, uri=Path(args.file).stem)
    return 0
