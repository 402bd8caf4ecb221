"""The progress line's numbers, and the SIGTERM handler that lets the loop checkpoint."""

import math
import signal
import threading

import pytest

from seq2seq_tf.training import progress


@pytest.fixture
def clock(monkeypatch):
    """`perf_counter` under test control: set `clock[0]` to move time."""
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    return now


def test_report_averages_over_the_steps_since_the_last_line(clock, caplog):
    caplog.set_level("INFO", logger="absl")
    line = progress.Progress(10, 110, unit="tgt tok")
    line.add(20.0, 10.0, 10.0, 2.0)
    line.add(40.0, 20.0, 30.0, 4.0)
    clock[0] = 102.0
    metrics = line.report(12, 1e-3)
    assert metrics == pytest.approx(
        {
            "loss": 60.0 / 40.0,
            "perplexity": math.exp(30.0 / 40.0),
            "learning_rate": 1e-3,
            "grad_norm": 3.0,
            "tokens_per_sec": 20.0,
            "steps_per_sec": 1.0,
            "step_time_ms": 1000.0,
        }
    )
    assert "step 12/110" in caplog.text and "20 tgt tok/s" in caplog.text
    assert "ETA 1m38s" in caplog.text  # 98 steps at 1 step/s
    # The sums start again after each line.
    line.add(5.0, 1000.0, 5.0, 1.0)
    clock[0] = 106.0
    metrics = line.report(14, 1e-3)
    assert metrics["loss"] == 1.0 and metrics["steps_per_sec"] == 0.5
    assert metrics["perplexity"] == pytest.approx(math.exp(50.0))  # capped, not inf


def test_a_time_budget_shortens_the_eta(clock, caplog):
    caplog.set_level("INFO", logger="absl")
    line = progress.Progress(0, 1000, deadline=110.0)
    line.add(1.0, 1.0, 1.0, 1.0)
    clock[0] = 101.0
    line.report(1, 1e-3)
    assert "tokens/s" in caplog.text and "ETA 0m09s" in caplog.text
    clock[0] = 120.0  # past the deadline: never negative
    line.report(2, 1e-3)
    assert "ETA 0m00s" in caplog.text


def test_stop_on_signal_notes_sigterm_and_restores_the_handler():
    previous = signal.getsignal(signal.SIGTERM)
    with progress.StopOnSignal(signal.SIGTERM) as stop:
        assert stop.received is None
        signal.raise_signal(signal.SIGTERM)  # noted, the process goes on
        assert stop.received == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_first_ctrl_c_asks_for_a_checkpoint_and_a_second_interrupts():
    previous = signal.getsignal(signal.SIGINT)
    with progress.StopOnSignal(signal.SIGTERM, signal.SIGINT) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.received == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous


def test_stop_on_signal_off_the_main_thread_installs_nothing():
    previous = signal.getsignal(signal.SIGTERM)
    seen = []

    def run():
        with progress.StopOnSignal(signal.SIGTERM) as stop:
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(stop.received)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [previous, None]
