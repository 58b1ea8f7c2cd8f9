"""Terminal tables of a bench run (rich): host peers with ratios, rv32 and pulp-open rows, memory by level."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _ms(t: dict[str, Any] | None) -> str:
    return f"{t['median'] * 1e3:.2f} / {t['min'] * 1e3:.2f}" if t and t.get("n") else "-"


def _ok(check: dict[str, Any] | None) -> str:
    if not check:
        return "-"
    if "mismatched" in check:
        detail = "bit-exact" if check["ok"] else f"{check['mismatched']}/{check['windows']} differ"
    elif check.get("tolerance") is not None:
        detail = f"|d| {check['max_abs_diff']:.2g} <= {check['tolerance']:.2g}"
        if check.get("fused"):
            detail += f" (QDQ unfused; fused int8 kernels |d| {check['fused']['max_abs_diff']:.2g})"
    else:
        detail = f"|d| {check['max_abs_diff']:.2g} (float)" if check.get("max_abs_diff") is not None else ""
    return ("[green]ok[/] " if check["ok"] else "[red]FAIL[/] ") + detail


def host_table(rows: list[dict[str, Any]]) -> Table | None:
    t = Table(title="host CPU, one thread, per window (median / min ms; ratio = median CPU time / edgeflow C)")
    for col in ("model", "peer", "CPU ms", "wall ms", "CPU ratio", "check"):
        t.add_column(col, justify="right" if "ms" in col or "ratio" in col else "left")
    n = 0
    for r in rows:
        h = r.get("host")
        if not h:
            continue
        for peer, p in h["peers"].items():
            n += 1
            if not p.get("available"):
                t.add_row(_name(r), peer, "-", "-", "-", f"skipped: {p['reason']}")
                continue
            ratio = h["ratio_cpu"].get(peer)
            t.add_row(_name(r), peer, _ms(p["cpu"]), _ms(p["wall"]),
                      f"{ratio:.2f}x" if ratio else "-", _ok(p["check"]))
    return t if n else None


def device_table(rows: list[dict[str, Any]]) -> Table | None:
    t = Table(title="devices: rv32 (QEMU icount instructions), pulp-open (GVSoC cycles)")
    for col in ("model", "target", "per window", "per MAC", "largest layers", "check"):
        t.add_column(col, justify="right" if col.startswith("per") else "left")
    n = 0
    for r in rows:
        for key in ("rv32", "pulp-open"):
            d = r.get(key)
            if d is None:
                continue
            n += 1
            if not d.get("available"):
                t.add_row(_name(r), key, "-", "-", "", d["reason"])
            elif key == "rv32":
                top = ", ".join(f"{op} {v['share']:.0%}" for op, v in list(d["by_op"].items())[:3])
                t.add_row(_name(r), key, f"{d['instret_per_window']:,} instr",
                          f"{d['instret_per_mac']:.2f}", top, _ok(d["check"]))
            else:
                t.add_row(_name(r), f"{key} {d['cores']} cores", f"{d['cycles_per_window']:,} cyc",
                          f"{1 / d['mac_per_cycle']:.3f} cyc", f"{d['mac_per_cycle']:.2f} MAC/cycle", _ok(d["check"]))
    return t if n else None


def _name(r: dict[str, Any]) -> str:
    return f"{r['card']} w{r['bits']}"


def _where(m: dict[str, Any]) -> str:
    """Where the external weights live, when they do not stay in L2."""
    return f" (ext. {m['weights_level']})" if m.get("external_weights") else ""


def _kib(b: int | None) -> str:
    return "-" if b is None else f"{b / 1024:,.1f}"


def memory_table(rows: list[dict[str, Any]]) -> Table | None:
    t = Table(title="memory by level, KiB (gap9 plan; L1 with double buffers; float32 = params x 4); "
                    ".text of the rv32 firmware")
    for col in ("model", "build", "L1 peak", "L2 arena", "L2 const", "external", "weights", ".text"):
        t.add_column(col, justify="left" if col in ("model", "build") else "right")
    n = 0
    for r in rows:
        m = r.get("memory")
        if not m:
            continue
        n += 1
        code = _kib(m["code"]["text"]) if m.get("code") else "-"
        name = _name(r)
        t.add_row(name, f"as built{_where(m)}", _kib(m["l1_peak"]), _kib(m["l2_arena"]), _kib(m["l2_constants"]),
                  _kib(m["external_weights"]), _kib(m["weight_bytes"]), code)
        if m.get("int8"):
            i = m["int8"]
            t.add_row(name, f"8-bit wts{_where(i)}", _kib(i["l1_peak"]), _kib(i["l2_arena"]), _kib(i["l2_constants"]),
                      _kib(i["external_weights"]), _kib(i["weight_bytes"]), "")
        t.add_row(name, "float32", "", "", "", "", _kib(m["float32"]["weight_bytes"]), "")
    return t if n else None


def tables(results: dict[str, Any]) -> list[Table]:
    rows = results["rows"]
    return [x for x in (host_table(rows), device_table(rows), memory_table(rows)) if x is not None]


def sources(results: dict[str, Any]) -> list[str]:
    """One line per row: where its quantized and float models came from, MACs, parameters."""
    return [f"{_name(r)}: {r['macs']:,} MACs, {r['n_params']:,} params; quantized model: {r['quant_source']}; "
            f"PyTorch peer: {r['float_source']}" for r in results["rows"]]
