"""Log lines of every hanmo process: `time LEVEL logger event key=value ...`, and, while a
request (on the api) or a job (on the worker) is handled, the request's id at the end
(`request_id=...`), so every line of one request can be found with one grep.

The id lives in a context variable: the api's RequestContext middleware (app/api/access.py)
sets it per request, and tasks and threads started from the request (asyncio tasks,
anyio.to_thread) carry it; the worker sets it to the ids of the jobs in the batch it runs
(they come in the job's stream entry, app/queue/entries.py)."""

from __future__ import annotations

import logging
import logging.config
import os
import time
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str] = ContextVar("hanmo_request_id", default="")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the request id in force on each record (`record.request_id`, '' outside a
    request): a handler's filter, so records of every logger get it, uvicorn's included."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class Formatter(logging.Formatter):
    """FORMAT, then ` request_id=<id>` on the lines written while a request is handled. The
    time is formatted once a second, not per line: strftime was 2.5 of a line's 6 us
    (timeit, 2026-12-07), and the api writes an access line per request."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._second, self._stamp = -1, ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", "")
        return f"{line} request_id={request_id}" if request_id else line


def config(level: str | None = None) -> dict[str, Any]:
    """The logging configuration (dictConfig) of hanmo's processes; also handed to uvicorn
    as its log_config, which applies it in each api process it spawns. Level: `level`, else
    HANMO_LOG_LEVEL, else INFO."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "app.logs.RequestIdFilter"}},
        "formatters": {"hanmo": {"()": "app.logs.Formatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "hanmo",
                "filters": ["request_id"],
            }
        },
        "root": {
            "level": level or os.environ.get("HANMO_LOG_LEVEL", "INFO"),
            "handlers": ["stderr"],
        },
    }


def configure(level: str | None = None) -> None:
    """Apply `config(level)` to this process."""
    logging.config.dictConfig(config(level))
