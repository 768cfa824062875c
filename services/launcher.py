"""`make run`: start every service of the suite in the foreground.

Each service runs as its own process (`python -m services.<name>`), so one
crashing never takes the others down silently: the launcher prefixes their
output with the service name, and when any child exits, or on Ctrl-C/SIGTERM,
it sends SIGTERM to all of them and waits (then SIGKILLs what is left) so the
whole suite is down within 5 s.
"""

import asyncio
import os
import signal
import sys

from services.catalog import SERVICES, ServiceSpec

STOP_TIMEOUT_S = 4.5
_COLOURS = ("\033[36m", "\033[35m", "\033[33m", "\033[32m")
_RESET = "\033[0m"


async def _pump(name: str, colour: str, stream: asyncio.StreamReader) -> None:
    tty = sys.stdout.isatty()
    prefix = f"{colour}{name:<9}|{_RESET} " if tty else f"{name:<9}| "
    while line := await stream.readline():
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


async def _start(spec: ServiceSpec) -> asyncio.subprocess.Process:
    env = dict(os.environ)
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

    procs = [await _start(spec) for spec in SERVICES]
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
