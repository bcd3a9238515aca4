"""Latency over time as an inline SVG (no plotting library): per-second p50 and p99 of TTFT."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

COLORS = {"gateway": "#c92a2a", "direct": "#1971c2"}


def per_second(samples: Sequence[Sequence[float]]) -> list[tuple[int, float, float]]:
    """(second since start, p50 ms, p99 ms) for each second that has samples."""
    if not samples:
        return []
    t0 = min(s[0] for s in samples)
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, v in samples:
        buckets[int(t - t0)].append(v * 1000)
    out = []
    for sec in sorted(buckets):
        vals = sorted(buckets[sec])
        out.append((sec, vals[len(vals) // 2], vals[min(len(vals) - 1, int(len(vals) * 0.99))]))
    return out


def svg(series: dict[str, Sequence[Sequence[float]]], width: int = 720, height: int = 260) -> str:
    """From raw (wall time, seconds) samples per run."""
    return svg_lines({name: per_second(s) for name, s in series.items() if s}, width, height)


def svg_lines(lines: dict[str, Sequence[Sequence[float]]], width: int = 720, height: int = 260) -> str:
    """From per-second (second, p50 ms, p99 ms) points per run (what results.json keeps)."""
    lines = {name: pts for name, pts in lines.items() if pts}
    points = [p for pts in lines.values() for p in pts]
    if not points:
        return "<p>No streaming samples to plot.</p>"
    max_x = max(p[0] for p in points) or 1
    max_y = max(p[2] for p in points) * 1.1 or 1
    pad = 44

    def xy(sec: float, ms: float) -> str:
        return f"{pad + sec / max_x * (width - 2 * pad):.1f},{height - pad - ms / max_y * (height - 2 * pad):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="TTFT over time">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
             f'<text x="{pad}" y="{pad - 10}" font-size="11">TTFT ms (max {max_y:.0f})</text>',
             f'<text x="{width - pad}" y="{height - 12}" font-size="11" text-anchor="end">seconds ({max_x})</text>']
    for i, (name, pts) in enumerate(lines.items()):
        color = COLORS.get(name, "#495057")
        for col, dash in ((1, ""), (2, ' stroke-dasharray="4 3"')):
            path = " ".join(xy(p[0], p[col]) for p in pts)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6"{dash} points="{path}"/>')
        parts.append(f'<text x="{width - pad - 150}" y="{pad + 14 * i}" font-size="11" fill="{color}">'
                     f'{name}: p50 solid, p99 dashed</text>')
    parts.append("</svg>")
    return "".join(parts)
