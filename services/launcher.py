"""`make run`: start every service of the suite in the foreground.

Each service runs as its own process (`python -m services.<name>`), so one
crashing never takes the others down silently: the launcher prefixes their
output with the service name, and when any child exits, or on Ctrl-C/SIGTERM,
it sends SIGTERM to all of them and waits (then SIGKILLs what is left) so the
whole suite is down within 5 s.

Without ``MM_AUTH_TOKENS`` the launcher makes one development token for the
run (owner ``dev``), hands it to every child and prints it with a ready
grpcurl line, so owned methods (alerts, portfolios) work out of the box while
nothing is left open to anyone who can reach the port.
"""

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import Mapping

from services.catalog import SERVICES, ServiceSpec

STOP_TIMEOUT_S = 4.5
_COLOURS = ("\033[36m", "\033[35m", "\033[33m", "\033[32m")
_RESET = "\033[0m"
DEV_OWNER = "dev"
# An owned method to show the token working: signals' alerts (DESIGN.md addresses).
_DEMO_ADDRESS_ENV = "MM_SIGNALS_ADDR"
_DEMO_DEFAULT_ADDRESS = "127.0.0.1:50052"
_DEMO_METHOD = "marketmesh.v1.SignalsService/ListAlerts"


def with_dev_token(
    environ: Mapping[str, str], token: str | None = None
) -> tuple[dict[str, str], str | None]:
    """The children's environment and, when a token was generated, what to print.

    A set ``MM_AUTH_TOKENS`` is left alone (None: nothing to print); unset or
    blank, it becomes ``dev=<token>`` with a fresh ``secrets.token_urlsafe``
    token unless ``token`` is given.
    """
    env = dict(environ)
    if env.get("MM_AUTH_TOKENS", "").strip():
        return env, None
    token = token or secrets.token_urlsafe(32)
    env["MM_AUTH_TOKENS"] = f"{DEV_OWNER}={token}"
    address = env.get(_DEMO_ADDRESS_ENV, "").strip() or _DEMO_DEFAULT_ADDRESS
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "[::]", ""):
        address = f"127.0.0.1:{port}"  # listening everywhere; call it locally
    message = (
        f"launcher | MM_AUTH_TOKENS is unset: development token for this run "
        f"(owner {DEV_OWNER}): {token}\n"
        f"launcher |   grpcurl -plaintext -H 'authorization: Bearer {token}' -d '{{}}' "
        f"{address} {_DEMO_METHOD}\n"
        "launcher | set MM_AUTH_TOKENS=owner=token,... to choose your own tokens"
    )
    return env, message


async def _pump(name: str, colour: str, stream: asyncio.StreamReader) -> None:
    tty = sys.stdout.isatty()
    prefix = f"{colour}{name:<9}|{_RESET} " if tty else f"{name:<9}| "
    while line := await stream.readline():
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


async def _start(spec: ServiceSpec, base_env: Mapping[str, str]) -> asyncio.subprocess.Process:
    env = dict(base_env)
    # Children write to a pipe, not a TTY; keep the console log format the
    # user would see when running a service by hand.
    if sys.stdout.isatty():
        env.setdefault("MM_LOG_FORMAT", "console")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        spec.module,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the launcher only; it stops the children
    )


async def _stop_all(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), timeout=STOP_TIMEOUT_S)
    except TimeoutError:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        await asyncio.gather(*(p.wait() for p in procs))


async def main() -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    env, token_message = with_dev_token(os.environ)
    if token_message is not None:
        print(token_message, flush=True)
    procs = [await _start(spec, env) for spec in SERVICES]
    pumps = [
        asyncio.create_task(_pump(spec.name, _COLOURS[i % len(_COLOURS)], proc.stdout))
        for i, (spec, proc) in enumerate(zip(SERVICES, procs, strict=True))
        if proc.stdout is not None
    ]
    exits = [asyncio.create_task(proc.wait()) for proc in procs]
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([stopper, *exits], return_when=asyncio.FIRST_COMPLETED)

    code = 0
    for spec, proc in zip(SERVICES, procs, strict=True):
        if proc.returncode is not None and not stop.is_set():
            print(f"launcher | {spec.name} exited with code {proc.returncode}; stopping the suite")
            code = proc.returncode or 1
    await _stop_all(procs)
    await asyncio.gather(*pumps, return_exceptions=True)
    stopper.cancel()
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
