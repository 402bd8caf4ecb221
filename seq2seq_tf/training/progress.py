"""The progress line (step, loss, rate, ETA) and the SIGTERM handler of the training loop."""

from __future__ import annotations

import math
import signal
import threading
import time

from absl import logging


class Progress:
    """Running sums between log lines, and the progress line itself."""

    def __init__(
        self, start_step: int, num_steps: int, deadline: float | None = None, unit: str = "tokens"
    ):
        self.num_steps = num_steps
        self.unit = unit  # what the task counts, e.g. "tgt tok" (target tokens)
        self.deadline = deadline  # perf_counter() at which the time budget ends, if any
        self.reset(start_step)

    def reset(self, step: int):
        self.step0, self.time0 = step, time.perf_counter()
        self.loss = self.nll = self.tokens = self.grad_norm = 0.0
        self.count = 0

    def add(self, loss_sum, nll_sum, tokens, grad_norm):
        self.loss += float(loss_sum)
        self.nll += float(nll_sum)
        self.tokens += float(tokens)
        self.grad_norm += float(grad_norm)
        self.count += 1

    def report(self, step: int, learning_rate: float) -> dict:
        elapsed = max(time.perf_counter() - self.time0, 1e-9)
        tokens = max(self.tokens, 1.0)
        nll = self.nll / tokens
        metrics = {
            "loss": self.loss / tokens,
            "perplexity": math.exp(min(nll, 50.0)),
            "learning_rate": learning_rate,
            "grad_norm": self.grad_norm / max(self.count, 1),
            "tokens_per_sec": self.tokens / elapsed,
            "steps_per_sec": (step - self.step0) / elapsed,
            "step_time_ms": 1000.0 * elapsed / max(step - self.step0, 1),
        }
        eta = (self.num_steps - step) / max(metrics["steps_per_sec"], 1e-9)
        if self.deadline is not None:  # a time budget ends the run first
            eta = max(min(eta, self.deadline - time.perf_counter()), 0.0)
        logging.info(
            "step %d/%d  loss %.3f  ppl %.2f  lr %.2e  |g| %.2f  %.0f %s/s  %.2f steps/s  "
            "ETA %dm%02ds",
            step,
            self.num_steps,
            metrics["loss"],
            metrics["perplexity"],
            learning_rate,
            metrics["grad_norm"],
            metrics["tokens_per_sec"],
            self.unit,
            metrics["steps_per_sec"],
            int(eta) // 60,
            int(eta) % 60,
        )
        self.reset(step)
        return metrics


class StopOnSignal:
    """Notes SIGTERM (the usual preemption signal) or Ctrl-C so the loop can checkpoint
    and exit; a second Ctrl-C interrupts at once (KeyboardInterrupt)."""

    def __init__(self, *signals):
        self.signals = signals
        self.received: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        again = " (Ctrl-C again to stop without saving)" if signum == signal.SIGINT else ""
        logging.warning("%s received: saving a checkpoint after this step%s", self.received, again)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers live there only
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
