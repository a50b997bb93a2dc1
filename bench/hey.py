"""The `hey` HTTP load generator: find it, run it for a fixed duration, parse its summary.

hey's summary (not `-o csv`) is parsed because only the summary carries transport errors
(refused connections, timeouts); the CSV lists answered requests alone."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

INSTALL_HINT = (
    "the HTTP load tool `hey` is not installed; install it with\n"
    "    apt-get update && apt-get install -y hey      (Debian/Ubuntu)\n"
    "or  go install github.com/rakyll/hey@latest        (anywhere with Go)"
)

_TOTAL = re.compile(r"Total:\s+([\d.]+) secs")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_PERCENTILE = re.compile(r"^\s*(\d+)%+ in ([\d.]+) secs", re.MULTILINE)
_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.MULTILINE)
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One load level: throughput, latency percentiles and what came back."""

    concurrency: int
    seconds: float
    requests_per_s: float  # hey's figure: every request, transport errors included
    ok: int  # 2xx responses
    ok_per_s: float  # 2xx responses per second: the throughput worth quoting
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int] = field(default_factory=dict)  # HTTP status -> responses
    errors: dict[str, int] = field(default_factory=dict)  # transport error -> count

    def describe_failures(self) -> str:
        """`none`, or counts by status and error, e.g. `429: 12, 504: 1, transport: 3`."""
        parts = [
            f"{code}: {n}" for code, n in sorted(self.statuses.items()) if not code.startswith("2")
        ]
        if self.errors:
            parts.append(f"transport: {sum(self.errors.values())}")
        return ", ".join(parts) or "none"


def find_hey() -> str | None:
    """The hey executable on PATH, or None."""
    return shutil.which("hey")


def run_hey(binary: str, url: str, body: str, concurrency: int, seconds: float) -> LoadResult:
    """POST `body` (JSON) to `url` from `concurrency` clients for `seconds`."""
    command = [
        binary,
        "-z",
        f"{seconds:g}s",
        "-c",
        str(concurrency),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-d",
        body,
        url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"hey exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse_summary(done.stdout, concurrency)


def parse_summary(text: str, concurrency: int) -> LoadResult:
    """A LoadResult from hey's default summary output."""
    total, rps = _TOTAL.search(text), _RPS.search(text)
    if total is None or rps is None:
        raise ValueError(f"not a hey summary:\n{text[:500]}")
    seconds = float(total.group(1))
    percentiles = {int(p): float(s) * 1000 for p, s in _PERCENTILE.findall(text)}
    statuses = {code: int(n) for code, n in _STATUS.findall(text)}
    _, _, error_section = text.partition("Error distribution:")
    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    return LoadResult(
        concurrency=concurrency,
        seconds=seconds,
        requests_per_s=float(rps.group(1)),
        ok=ok,
        ok_per_s=ok / seconds if seconds else 0.0,
        p50_ms=percentiles.get(50),
        p99_ms=percentiles.get(99),
        statuses=statuses,
        errors={message.strip(): int(n) for n, message in _ERROR.findall(error_section)},
    )
