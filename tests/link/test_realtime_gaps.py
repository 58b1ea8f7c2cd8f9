"""`stream --realtime` paces windows by their start in the recording: an EDF+D gap is waited out, not streamed as if
the recording were contiguous, and a window is late only when its answer comes after the next window is due. The
clock is virtual (time advances only when the host waits, or when a slow device is simulated): nothing sleeps."""

from __future__ import annotations

import json

import pytest

from edgeflow.cli import main
from edgeflow.link import harness
from edgeflow.link.harness import Clock, StreamConfig, ok, stream
from edgeflow.link.session import Session, open_port

pytestmark = pytest.mark.link

STARTS = (0.0, 5.0, 30.0, 35.0)   # two windows, a 20 s gap, two more (5 s windows, stride 5)


class VirtualClock:
    """Seconds that pass only when the host sleeps (recorded) or `advance` is called."""

    def __init__(self) -> None:
        self.t, self.sleeps, self.sent_at = 0.0, [], []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(round(s, 9))
        self.t += s

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


def _session(device, micro_hash, vc: VirtualClock, device_s: float = 0.0) -> tuple:
    """A session whose every window is timestamped on the virtual clock when sent; the device's answer then takes
    `device_s` virtual seconds."""
    port = open_port(device.port, write_timeout=0.5)
    s = Session(port, micro_hash, timeout_s=2.0, retries=2)
    s.handshake()
    infer = s.infer

    def timed(seq, payload):
        vc.sent_at.append(vc.t)
        ans = infer(seq, payload)
        vc.t += device_s
        return ans

    s.infer = timed
    return port, s


def test_pacing_follows_window_starts_across_a_gap(device, micro_graph, micro_windows, micro_hash):
    vc = VirtualClock()
    port, s = _session(device, micro_hash, vc)
    try:
        summary, recs = stream(s, micro_graph, micro_windows[:4],
                               StreamConfig(stride_s=5.0, realtime=True, window_starts_s=STARTS, clock=vc.clock()))
    finally:
        port.close()
    assert ok(summary) and summary["kept_up"] is True and summary["late_windows"] == 0
    assert vc.sent_at == list(STARTS)          # contiguous pacing would have sent at 0, 5, 10, 15
    assert vc.sleeps == [5.0, 25.0, 5.0]
    assert [r.start_s for r in recs] == list(STARTS)


def test_a_gap_gives_a_slow_device_time_to_catch_up(device, micro_graph, micro_windows, micro_hash):
    """Each answer takes 7 virtual s at a 5 s stride: late except window 1, whose successor comes after the gap."""
    vc = VirtualClock()
    port, s = _session(device, micro_hash, vc, device_s=7.0)
    try:
        summary, recs = stream(s, micro_graph, micro_windows[:4],
                               StreamConfig(stride_s=5.0, realtime=True, window_starts_s=STARTS, clock=vc.clock()))
    finally:
        port.close()
    assert ok(summary)
    assert vc.sent_at == [0.0, 7.0, 30.0, 37.0]   # window 1 sent late at once, window 2 waits out the gap
    assert [r.late for r in recs] == [True, False, True, True]
    assert summary["kept_up"] is False and summary["late_windows"] == 3


def test_without_start_times_windows_are_paced_by_the_stride(device, micro_graph, micro_windows, micro_hash):
    vc = VirtualClock()
    port, s = _session(device, micro_hash, vc, device_s=1.0)
    try:
        summary, recs = stream(s, micro_graph, micro_windows[:3],
                               StreamConfig(stride_s=2.0, realtime=True, clock=vc.clock()))
    finally:
        port.close()
    assert ok(summary) and vc.sent_at == [0.0, 2.0, 4.0] and not any(r.late for r in recs)


def test_stream_cli_realtime_waits_out_an_edf_plus_d_gap(device, native_build, tmp_path, capsys, monkeypatch):
    """`edgeflow stream --realtime` of an EDF+D file (6 s, a 24 s gap, 11 s: windows at 0, 30, 35 s) on the
    virtual clock: 30 s and 5 s of waiting, every answer bit-exact."""
    from malformed import edf  # the corpus' byte-level EDF writer (tests/ is on sys.path)

    vc = VirtualClock()
    monkeypatch.setattr(harness, "SYSTEM_CLOCK", vc.clock())
    onsets = [float(t) for t in range(6)] + [float(t) for t in range(30, 41)]
    rec = edf.write(tmp_path / "gaps.edf", edf.edf_bytes(edf.signals(17.0, 256.0), 256.0, onsets=onsets))
    out = tmp_path / "run"
    code = main(["stream", "--build", str(native_build), "--port", device.port, "--input", str(rec), "--card",
                 "femba-micro", "--realtime", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr()
    rows = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["start_s"] for r in rows] == [0.0, 30.0, 35.0] and all(r["match"] for r in rows)
    assert vc.sleeps == [30.0, 5.0] and summary["kept_up"] is True and summary["realtime"] is True
