"""`voiceflow api` sub-commands. Only argparse is imported at module level (see voiceflow_cli.main)."""

from __future__ import annotations

import argparse

from voiceflow_edge.servers import DEFAULT_HOST


def register(subparsers: argparse._SubParsersAction) -> None:
    api = subparsers.add_parser(
        "api",
        help="run the Control API (model registry, batch jobs, auth) on port 8000",
        description="Run the Control API. Settings come from VOICEFLOW_* environment variables "
        "(VOICEFLOW_DATABASE_URL, VOICEFLOW_REDIS_URL, VOICEFLOW_ADMIN_PASSWORD, ...): docs/control_api.md.",
    )
    api.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST}; 0.0.0.0 for every interface)"
    )
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    api.add_argument(
        "--embedded-workers",
        type=int,
        default=None,
        help="batch worker threads per API process (0: leave batch work to `voiceflow api worker`)",
    )
    api.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    api.set_defaults(handler=_serve)
    commands = api.add_subparsers(dest="api_command", metavar="SUBCOMMAND")

    create = commands.add_parser("create-user", help="create a user (password from --password-stdin or a prompt)")
    create.add_argument("username", help="the new user's name")
    create.add_argument(
        "--role", choices=("viewer", "operator", "admin"), default="viewer", help="the user's role (default viewer)"
    )
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(handler=_create_user)

    worker = commands.add_parser("worker", help="run batch and registry workers without the HTTP server")
    worker.add_argument("--threads", type=int, default=1, help="batch worker threads (default 1)")
    worker.add_argument("--no-registry", action="store_true", help="do not run train/export work here")
    worker.set_defaults(handler=_worker)

    migrate = commands.add_parser("migrate", help="apply the database migrations and exit")
    migrate.set_defaults(handler=_migrate)


def _serve(args: argparse.Namespace) -> int:
    import os
    import sys

    import uvicorn

    from voiceflow_edge.servers import exposure_problems, uvicorn_options

    if args.embedded_workers is not None:
        os.environ["VOICEFLOW_EMBEDDED_WORKERS"] = str(args.embedded_workers)
    from control_api.app import build_context, prepare
    from control_api.settings import Settings

    # Migrate once here so several uvicorn processes do not all start by racing on it.
    settings = Settings.from_env()
    problems = exposure_problems(
        args.host,
        {"VOICEFLOW_JWT_SECRET": settings.jwt_secret},
        {"VOICEFLOW_ADMIN_PASSWORD": settings.resolved_admin_password()},
    )
    if problems:
        print(f"voiceflow api: refusing to listen on {args.host}: {'; '.join(problems)}", file=sys.stderr)
        print("  leave VOICEFLOW_JWT_SECRET unset to generate one, or bind 127.0.0.1", file=sys.stderr)
        return 2
    prepare(build_context(settings))
    uvicorn.run(
        "control_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        **uvicorn_options(settings.trusted_proxies),  # header and keep-alive timeouts, header size cap
    )
    return 0


def _create_user(args: argparse.Namespace) -> int:
    import getpass
    import sys

    from control_api import users
    from control_api.app import build_context, prepare
    from control_api.db import session_scope
    from control_api.settings import Settings

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    ctx = build_context(Settings.from_env())
    prepare(ctx)
    try:
        with session_scope(ctx.sessions) as session:
            users.create_user(session, args.username, password, args.role)
    except users.UserExists:
        print(f"voiceflow api: error: user {args.username!r} already exists", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"voiceflow api: error: {exc}", file=sys.stderr)
        return 2
    print(f"created {args.role} {args.username!r}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    import logging
    import signal

    from control_api.app import build_context, prepare
    from control_api.settings import Settings
    from control_api.worker import WorkerPool

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = build_context(Settings.from_env())
    prepare(ctx)
    pool = WorkerPool(
        ctx.sessions,
        ctx.settings,
        ctx.diarize,
        ctx.backend,
        batch_workers=args.threads,
        registry_worker=not args.no_registry,
    )
    signal.signal(signal.SIGTERM, lambda *_: pool.stop_event.set())
    pool.start()
    print(
        f"worker ready: {args.threads} batch thread(s), registry work {'off' if args.no_registry else 'on'}",
        flush=True,
    )
    try:
        pool.wait()
    except KeyboardInterrupt:
        pool.stop()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from control_api.app import build_context, prepare
    from control_api.settings import Settings

    prepare(build_context(Settings.from_env()))
    print("database is at the latest revision")
    return 0
