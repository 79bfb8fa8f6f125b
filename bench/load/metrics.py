"""What the machine did during a window: CPU and memory of each process of the run, Redis
commands per second, and how busy the two cores were with other people's work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil
import redis

MB = 1024 * 1024


@dataclass(frozen=True)
class ProcessFigures:
    cpu_percent: float  # of one core, averaged over the window
    rss_mb_peak: float
    threads_peak: int


@dataclass(frozen=True)
class Window:
    seconds: float
    processes: dict[str, ProcessFigures]
    redis_commands_per_second: float
    machine_busy_percent: float  # of all cores, everyone's work
    others_percent: float  # of all cores, work of processes outside this run
    load_average: float  # 1-minute, at the end


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _commands(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


@dataclass
class Sampler:
    """`start()`, then `stop()` gives the `Window`; RSS and threads are sampled every 0.5 s."""

    pids: Mapping[str, int]
    redis_client: redis.Redis
    _processes: dict[str, psutil.Process] = field(default_factory=dict)
    _cpu: dict[str, float] = field(default_factory=dict)
    _rss: dict[str, float] = field(default_factory=dict)
    _threads: dict[str, int] = field(default_factory=dict)
    _began: tuple[float, float, int] = (0.0, 0.0, 0)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        self._cpu = {name: _cpu_seconds(p) for name, p in self._processes.items()}
        self._began = (time.monotonic(), _busy_seconds(), _commands(self.redis_client))
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            for name, process in self._processes.items():
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss = float(process.memory_info().rss) / MB
                    self._rss[name] = max(self._rss.get(name, 0.0), rss)
                    threads = process.num_threads()
                    self._threads[name] = max(self._threads.get(name, 0), threads)
            await asyncio.sleep(0.5)

    def stop(self) -> Window:
        if self._task is not None:
            self._task.cancel()
        began, busy_began, commands_began = self._began
        seconds = time.monotonic() - began
        ours = 0.0
        figures = {}
        for name, process in self._processes.items():
            used = _cpu_seconds(process) - self._cpu[name]
            ours += used
            figures[name] = ProcessFigures(
                cpu_percent=100 * used / seconds,
                rss_mb_peak=self._rss.get(name, 0.0),
                threads_peak=self._threads.get(name, 0),
            )
        busy = _busy_seconds() - busy_began
        cores = psutil.cpu_count() or 1
        return Window(
            seconds=seconds,
            processes=figures,
            redis_commands_per_second=(_commands(self.redis_client) - commands_began) / seconds,
            machine_busy_percent=100 * busy / seconds / cores,
            others_percent=100 * max(0.0, busy - ours) / seconds / cores,
            load_average=os.getloadavg()[0],
        )
