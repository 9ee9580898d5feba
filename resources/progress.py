"""Progress on a terminal for in-process runs (the CLI, the Python API): one line when each step
starts and ends — fit, sample, every gate check, every report, publish — with the run's elapsed time
and the step's own, plus the steps' own info lines. Dagster already records the same events in the
run's log; this logger only makes them readable while a release runs."""

import logging
import os
import sys
import time

import dagster as dg

PROGRESS_START_ENV = "SYNTH_PROGRESS_START"  # the run's start (epoch seconds), for step processes of a multiprocess run
_SHOWN = {"STEP_START": "started", "STEP_SUCCESS": "done", "STEP_FAILURE": "failed"}


class _ProgressHandler(logging.Handler):
    def __init__(self, stream) -> None:
        super().__init__(logging.DEBUG)
        self.stream, self.step_start = stream, {}
        self.start = float(os.environ.get(PROGRESS_START_ENV) or time.time())

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or "run"
        event = meta.get("dagster_event")
        kind = getattr(event, "event_type_value", None)
        now = time.time()
        if kind in _SHOWN:
            took = ""
            if kind == "STEP_START":
                self.step_start[step] = now
            elif step in self.step_start:
                took = f" in {now - self.step_start.pop(step):.1f} s"
            text = f"{step}: {_SHOWN[kind]}{took}"
        elif event is None and record.levelno >= logging.INFO:
            text = f"{step}: {meta.get('orig_message') or record.getMessage()}"
        else:
            return
        self.stream.write(f"[{now - self.start:7.1f}s] {text}\n")
        self.stream.flush()


@dg.logger(description="step progress with elapsed time on stderr (in-process CLI / API runs)")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger(f"synth_pipeline.progress.{id(init_context)}")
    logger.handlers = [_ProgressHandler(sys.stderr)]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger
