"""The streaming host against the device main loop on a pty, each link fault injected: zero windows lost or
counted twice, every answer bit-exact with the reference, and the summary says how the host recovered."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.ir.reference import run
from edgeflow.link.faults import Fault, FaultyPort
from edgeflow.link.harness import StreamConfig, ok, stream
from edgeflow.link.session import Session, open_port

pytestmark = pytest.mark.link

N_WINDOWS = 4
CHUNKS = 28  # femba-micro: 28160 input bytes in INPUT frames of <= 1024 payload bytes


def _session(device, faults, micro_hash, timeout=0.5):
    port = FaultyPort(open_port(device.port, write_timeout=0.5), [], on_reset=device.restart, seed=4)
    s = Session(port, micro_hash, timeout_s=timeout, retries=4)
    s.handshake()
    port.tx_frames = port.rx_frames = 0  # fault positions count from the first window's first chunk
    port.faults = faults
    return port, s


def test_clean_stream_is_bit_exact_with_device_counters(device, micro_graph, micro_windows, micro_hash, tmp_path):
    port, s = _session(device, [], micro_hash)
    summary, recs = stream(s, micro_graph, micro_windows[:N_WINDOWS], StreamConfig(out_dir=tmp_path))
    port.close()
    assert ok(summary) and summary["matching"] == N_WINDOWS
    assert port.tx_frames == N_WINDOWS * CHUNKS and port.rx_frames == N_WINDOWS
    ref = run(micro_graph, micro_windows[0])[micro_graph.outputs[0]].reshape(-1)
    assert recs[0].values == ref.tolist()
    assert all(r.instret > 0 and len(r.layer_instret) == len(micro_graph.nodes) for r in recs)
    assert summary["link"]["retries"] == 0 and summary["link"]["resyncs"] == 0
    lines = (tmp_path / "windows.jsonl").read_text().splitlines()
    assert len(lines) == N_WINDOWS and (tmp_path / "summary.json").exists()


# (fault list, what the link statistics must show)
FAULTS = {
    "garbage-before-frame": ([Fault("garbage", "tx", CHUNKS + 3)], "device_error"),
    "dropped-byte": ([Fault("drop", "tx", 2 * CHUNKS + 10)], "device_error"),
    "flipped-bit": ([Fault("flip", "tx", 5)], "device_error"),
    "truncated-frame": ([Fault("truncate", "tx", CHUNKS - 1)], "device_error"),
    "answer-garbage": ([Fault("garbage", "rx", 1)], "bad_frame"),
    "answer-dropped-byte": ([Fault("drop", "rx", 2)], "bad_frame"),
    "answer-flipped-bit": ([Fault("flip", "rx", 0)], "bad_frame"),
    "answer-truncated": ([Fault("truncate", "rx", 3)], "bad_frame"),
    "answer-lost": ([Fault("lose", "rx", 1)], "timeout"),
    "last-chunk-lost": ([Fault("lose", "tx", 2 * CHUNKS - 1)], "timeout"),
    "device-reset-mid-window": ([Fault("reset", "tx", CHUNKS + 12)], "reset"),
    "several": ([Fault("flip", "tx", 3), Fault("drop", "rx", 1), Fault("reset", "tx", 3 * CHUNKS + 2)], "reset"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_host_survives_fault(name, device, micro_graph, micro_windows, micro_hash):
    faults, evidence = FAULTS[name]
    port, s = _session(device, faults, micro_hash)
    summary, recs = stream(s, micro_graph, micro_windows[:N_WINDOWS], StreamConfig(retries=4))
    port.close()
    assert port.all_fired, "the fault was never injected"
    assert ok(summary), summary
    assert [r.index for r in recs] == list(range(N_WINDOWS))  # each window once, none lost
    assert all(r.match for r in recs)
    link = summary["link"]
    assert link["retries"] >= 1
    if evidence == "device_error":
        assert sum(link["device_errors"].values()) >= 1
    elif evidence == "bad_frame":
        assert link["bad_frames"] >= 1 and link["replays"] >= 1  # the device re-sent its cached answer
    elif evidence == "timeout":
        assert link["timeouts"] >= 1
    elif evidence == "reset":
        assert link["resets"] >= 1 and link["resyncs"] >= 1
    fresh = [r for r in recs if not r.replay]
    if evidence != "reset":  # the device ran each window exactly once, replays did not count
        assert recs[-1].instret is not None and len(fresh) + summary["link"]["replays"] == N_WINDOWS


def test_replayed_answer_is_not_rerun(device, micro_graph, micro_windows, micro_hash):
    port, s = _session(device, [Fault("lose", "rx", 0)], micro_hash)
    first = s.infer(1, micro_windows[0].tobytes())
    second = s.infer(2, micro_windows[1].tobytes())
    port.close()
    assert first.attempts == 2 and first.output.replay
    assert not second.output.replay and second.output.windows_run == 2  # window 1 ran once, not twice


def test_silent_device_windows_are_lost_and_reported(device, micro_graph, micro_windows, micro_hash):
    import os
    import signal

    port, s = _session(device, [], micro_hash, timeout=0.4)
    s.retries = 1
    stopped = []

    def freeze(rec, _summary):
        if not stopped:
            os.kill(device.proc.pid, signal.SIGSTOP)
            stopped.append(rec.index)

    try:
        summary, recs = stream(s, micro_graph, micro_windows[:5], StreamConfig(max_consecutive_lost=2),
                               on_window=freeze)
    finally:
        os.kill(device.proc.pid, signal.SIGCONT)
        port.close()
    assert not ok(summary)
    assert summary["answered"] == 1 and summary["lost"] == 4 and "aborted" in summary
    assert [r.answered for r in recs] == [True, False, False]
    assert summary["link"]["timeouts"] >= 4


def test_expected_values_come_from_the_reference(device, micro_graph, micro_windows, micro_hash):
    """A device answering for other inputs is caught: flip the host's idea of window 0 after sending."""
    port, s = _session(device, [], micro_hash)
    xs = micro_windows[:2].copy()
    summary, recs = stream(s, micro_graph, xs, StreamConfig())
    assert ok(summary)
    tampered = micro_graph.copy()
    head = next(t for t in reversed(list(tampered.tensors.values())) if t.data is not None and t.data.size > 1)
    head.data = np.zeros_like(head.data)
    summary2, _ = stream(s, tampered, xs, StreamConfig())
    port.close()
    assert summary2["mismatched"] >= 1 and not ok(summary2)


def test_realtime_pacing_reports_whether_the_device_kept_up(device, micro_graph, micro_windows, micro_hash):
    import time

    port, s = _session(device, [], micro_hash)
    t0 = time.monotonic()
    paced, _ = stream(s, micro_graph, micro_windows[:3], StreamConfig(stride_s=0.4, realtime=True))
    took = time.monotonic() - t0
    rushed, _ = stream(s, micro_graph, micro_windows[:3], StreamConfig(stride_s=1e-4, realtime=True))
    port.close()
    assert took >= 0.8  # windows 1 and 2 waited for their turn
    assert paced["kept_up"] is True and paced["late_windows"] == 0 and paced["real_time_factor"] < 1
    assert rushed["kept_up"] is False and rushed["late_windows"] >= 1 and ok(rushed)


def test_ctrl_c_ends_the_stream_with_a_summary(device, micro_graph, micro_windows, micro_hash, tmp_path):
    port, s = _session(device, [], micro_hash)

    def interrupt(rec, _summary):
        if rec.index == 1:
            raise KeyboardInterrupt

    summary, recs = stream(s, micro_graph, micro_windows[:4], StreamConfig(out_dir=tmp_path), on_window=interrupt)
    port.close()
    assert summary["aborted"] == "interrupted" and summary["answered"] == 2 and summary["lost"] == 2
    assert not ok(summary) and len((tmp_path / "windows.jsonl").read_text().splitlines()) == 2


def test_leftover_partial_frame_does_not_cost_a_timeout(device, micro_windows, micro_hash):
    """An earlier session stopped mid-frame: the next HELLO gets through at once, and the window needs no
    timeout (the device's ERROR about the leftover bytes may cost one immediate resend)."""
    from edgeflow.link.protocol import input_frames

    raw = open_port(device.port)
    raw.write(input_frames(9, micro_windows[0].tobytes(), 1024)[0][:300])  # half a frame, no delimiter
    raw.close()
    s = Session(open_port(device.port), micro_hash, timeout_s=1.0, retries=0)
    s.handshake()
    s.retries = 1
    s.port.write(input_frames(1, micro_windows[0].tobytes(), 1024)[0][:200])  # a write cut short
    ans = s.infer(1, micro_windows[0].tobytes())
    s.port.close()
    assert ans.attempts <= 2 and s.stats.timeouts == 0 and not ans.output.replay
