"""The view of `edgeflow data inspect`: a rich summary and per-channel table of edgeflow.data.eeg.describe()."""

from __future__ import annotations

from typing import Any


def render_inspect(info: dict[str, Any]) -> Any:
    """A rich renderable (summary table, then one row per montage channel) for describe()'s dict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    pp, chans = info["preprocess"], info["montage_channels"]
    head = Table(show_header=False, box=None)
    n_eeg = sum(v is not None for v in info["recognised"].values())
    head.add_row("channels", f"{len(info['channels'])} ({n_eeg} EEG electrodes or pairs recognised)")
    head.add_row("rate", f"{info['sfreq']:g} Hz -> {pp['sample_rate']:g} Hz")
    head.add_row("duration", f"{info['duration_s']:.1f} s ({info['n_samples']} samples)")
    if len(stretches := info.get("stretches", [])) > 1:  # EDF+D: recorded stretches between gaps
        spans = ", ".join(f"{s['start_s']:g}-{s['start_s'] + s['duration_s']:g} s" for s in stretches)
        head.add_row("stretches", f"{len(stretches)} between gaps (windows never straddle one): {spans}")
    montage = info["montage"] if isinstance(info["montage"], str) else "explicit"
    head.add_row("montage", f"{montage}: {sum(c['found'] for c in chans)}/{len(chans)} channels found")
    head.add_row("windows", f"{info['n_windows']} x {pp['window_s']:g} s every {pp['stride_s']:g} s")
    head.add_row("filter", f"band-pass {pp['bandpass']}, notch {pp['notch']}, normalise {pp['normalize']}")
    for problem in info["problems"]:
        head.add_row("[red]problem", f"[red]{problem}")
    t = Table(title="montage channels after filtering (before normalisation)" if info["stats"] else None)
    numbers = ("median uV", "IQR uV", "std uV", "max |norm|", "") if info["stats"] else ()
    for col in ("channel", "from", *numbers):
        t.add_column(col, justify="right" if "uV" in col or "norm" in col else "left")
    stats = {s["name"]: s for s in info["stats"]}
    for c in chans:
        row = [c["name"], c["from"] if c["found"] else "[red]missing"]
        if s := stats.get(c["name"]):
            row += [f"{s['median_uv']:.2f}", f"{s['iqr_uv']:.2f}", f"{s['std_uv']:.2f}",
                    f"{s['max_abs_norm']:.1f}", "[yellow]flat" if s["flat"] else ""]
        t.add_row(*row)
    return Group(Text(info["file"], style="bold"), head, t)
