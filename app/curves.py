"""Closed outlines fitted with cubic Bézier curves (issue 52): what SVGs draw and, converted to
TrueType's quadratics (app.fonts, fontTools' cu2qu), what fonts hold, instead of the traced
polygon.

The fit is Schneider's ("An Algorithm for Automatically Fitting Digitized Curves", Graphics
Gems, 1990), run on every span of every loop at once. A loop is first cut at its corners
(where it turns by more than 60 degrees within ``reach`` either side) and into at least
``INITIAL_SPANS`` spans. A span's ends are points of the trace and its end tangents the
trace's own (central differences, so the curves either side of a join share one: G1; one-sided
at corners); its two handle lengths are a least-squares fit to its points at their chord-length
parameters, refined by Newton steps towards each point's nearest curve point. A span whose
worst point lies further than ``tolerance`` from its curve is split there, until every span
fits; then neighbouring spans are joined wherever one curve fits both. A span within
``tolerance`` of its chord is a straight line. NumPy over all spans per round (bincount,
reduceat), ~15 rounds a glyph.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

INITIAL_SPANS = 4  # a loop is first cut at its corners, and into at least this many spans
REFINE_STEPS = 2  # Newton reparameterisations between least-squares fits
MERGE_ROUNDS = 4  # passes that try to join neighbouring spans into one curve
CORNER_COS = 0.5  # a corner turns more than 60 degrees within its reach either side
Segments = np.ndarray  # [m, 3, 2] per loop: each cubic's two handles and its end (C1, C2, P3);
# the first segment starts at the last one's end. A straight line has C1 = its start, C2 = P3.
Spans = tuple[np.ndarray, np.ndarray, np.ndarray]  # (first index, last index, handles [s, 2, 2])


class _Trace(NamedTuple):
    """Every loop closed by repeating its first point, concatenated: points, the tangent a
    span leaving each point starts along and the one a span reaching it ends along (the same
    but at corners), arc length, each loop's first index, and which points are corners."""

    pts: np.ndarray
    out: np.ndarray
    into: np.ndarray
    arc: np.ndarray
    starts: np.ndarray
    corner: np.ndarray


def fit_loops(loops: list[np.ndarray], tolerance: float, reach: float) -> list[Segments]:
    """Closed loops ([n, 2] points, no repeated closing point) as cubic segments that pass
    within ``tolerance`` of every point (in the points' units); loops of under 3 points go."""
    kept = [p for p in (_distinct(np.asarray(p, np.float64)) for p in loops) if len(p) >= 3]
    if not kept:
        return []
    trace = _concatenate([_prepare(loop, reach) for loop in kept])
    a, b = _initial_spans(trace)
    fitted: list[Spans] = []
    while len(a):
        handles, worst, err2 = _fit(trace, a, b, tolerance)
        fits = (err2 <= tolerance**2) | (b - a <= 1)
        fitted.append((a[fits], b[fits], handles[fits]))
        split = np.clip(worst[~fits], a[~fits] + 1, b[~fits] - 1)
        a, b = np.concatenate([a[~fits], split]), np.concatenate([split, b[~fits]])
    return _by_loop(trace, _merged(trace, _sorted(fitted), tolerance))


def _distinct(loop: np.ndarray) -> np.ndarray:
    """The loop without points that repeat their predecessor (the trace can give two)."""
    step = np.hypot(*(loop - np.roll(loop, 1, axis=0)).T)
    return loop[step > 1e-9] if len(loop) > 1 else loop


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.maximum(np.hypot(*v.T), 1e-12)[:, None]
    return out


def _prepare(loop: np.ndarray, reach: float) -> tuple[np.ndarray, ...]:
    """(loop, tangent out, tangent in, corners), rolled to start at its sharpest corner (a
    loop's start is a join that no merge removes)."""
    n = len(loop)
    perimeter = float(np.hypot(*(loop - np.roll(loop, 1, axis=0)).T).sum())
    k = max(1, min(n // 3, round(reach * n / perimeter)))
    back = _unit(loop - np.roll(loop, k, axis=0))
    ahead = _unit(np.roll(loop, -k, axis=0) - loop)
    turn = -(back * ahead).sum(axis=1)
    corner = turn > -CORNER_COS
    for shift in range(1, k + 1):  # the sharpest point of each corner
        corner &= (turn > np.roll(turn, shift)) & (turn >= np.roll(turn, -shift))
    central = _unit(np.roll(loop, -1, axis=0) - np.roll(loop, 1, axis=0))
    out = np.where(corner[:, None], ahead, central)
    into = np.where(corner[:, None], back, central)
    first = int(np.argmax(np.where(corner, turn, -np.inf))) if corner.any() else 0
    return tuple(np.roll(x, -first, axis=0) for x in (loop, out, into, corner))


def _concatenate(prepared: list[tuple[np.ndarray, ...]]) -> _Trace:
    def closed(i: int) -> np.ndarray:
        return np.concatenate([np.concatenate([p[i], p[i][:1]]) for p in prepared])

    pts = closed(0)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    sizes = np.array([len(p[0]) + 1 for p in prepared])
    return _Trace(pts, closed(1), closed(2), arc, np.cumsum(sizes) - sizes, closed(3))


def _initial_spans(trace: _Trace) -> tuple[np.ndarray, np.ndarray]:
    """Each loop cut at its corners and at INITIAL_SPANS equal steps."""
    ends = np.append(trace.starts[1:], len(trace.pts)) - 1  # each loop's closing repeat
    cuts = []
    for start, end in zip(trace.starts.tolist(), ends.tolist(), strict=True):
        n = end - start
        steps = min(INITIAL_SPANS, n)
        even = start + n * np.arange(steps + 1) // steps
        cuts.append(np.union1d(even, start + np.flatnonzero(trace.corner[start:end])))
    return np.concatenate([c[:-1] for c in cuts]), np.concatenate([c[1:] for c in cuts])


def _fit(
    trace: _Trace, a: np.ndarray, b: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each span's handles [s, 2, 2], its worst point's index and that point's squared distance
    from the curve; a span within ``tolerance`` of its chord is that straight line."""
    lengths = b - a + 1
    first = np.cumsum(lengths) - lengths
    sid = np.repeat(np.arange(len(a)), lengths)
    idx = a[sid] + np.arange(lengths.sum()) - first[sid]
    data = trace.pts[idx]
    u = (trace.arc[idx] - trace.arc[a][sid]) / (trace.arc[b] - trace.arc[a])[sid]
    p0, p3 = trace.pts[a], trace.pts[b]
    t1, t2 = trace.out[a], -trace.into[b]
    for _ in range(REFINE_STEPS + 1):
        c1, c2 = _handles(data, u, sid, (p0, p3), (t1, t2))
        u = _newton(data, u, (p0[sid], c1[sid], c2[sid], p3[sid]))
    line = _chord_distance2(data, sid, p0, p3, first) <= tolerance**2
    c1[line], c2[line] = p0[line], p3[line]
    u = np.where(line[sid], _along(data, p0[sid], p3[sid]), u)
    off = _bezier(u, p0[sid], c1[sid], c2[sid], p3[sid]) - data
    err2 = (off * off).sum(axis=1)
    worst2 = np.maximum.reduceat(err2, first)
    at_worst = np.flatnonzero(err2 >= worst2[sid])
    _, first_worst = np.unique(sid[at_worst], return_index=True)
    return np.stack([c1, c2], axis=1), idx[at_worst[first_worst]], worst2


def _along(data: np.ndarray, p0: np.ndarray, p3: np.ndarray) -> np.ndarray:
    """Each point's parameter on the line from ``p0`` to ``p3`` whose cubic has its handles at
    its ends (u^2 (3 - 2u) of the way along), at the point's projection."""
    d = p3 - p0
    t = np.clip(((data - p0) * d).sum(axis=1) / np.maximum((d * d).sum(axis=1), 1e-24), 0, 1)
    # invert t = 3u^2 - 2u^3 (monotone on [0, 1]) by the closed form of the cubic's root
    out: np.ndarray = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * t) / 3.0)
    return out


def _chord_distance2(
    data: np.ndarray, sid: np.ndarray, p0: np.ndarray, p3: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Each span's furthest point's squared distance from the segment between its ends."""
    a, d = p0[sid], (p3 - p0)[sid]
    t = np.clip(((data - a) * d).sum(axis=1) / np.maximum((d * d).sum(axis=1), 1e-24), 0, 1)
    off = data - a - t[:, None] * d
    out: np.ndarray = np.maximum.reduceat((off * off).sum(axis=1), first)
    return out


def _handles(
    data: np.ndarray,
    u: np.ndarray,
    sid: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray],
    tangents: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares handle lengths along the end tangents (Schneider's 2 × 2 system), or a
    third of the chord each where that system is singular or gives a handle pointing back."""
    (p0, p3), (t1, t2) = ends, tangents
    n = len(t1)
    b0, b1, b2, b3 = _bernstein(u)
    a1, a2 = t1[sid] * b1[:, None], t2[sid] * b2[:, None]
    rest = data - p0[sid] * (b0 + b1)[:, None] - p3[sid] * (b2 + b3)[:, None]

    def total(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.bincount(sid, x[:, 0] * y[:, 0] + x[:, 1] * y[:, 1], minlength=n)

    c11, c12, c22 = total(a1, a1), total(a1, a2), total(a2, a2)
    x1, x2 = total(rest, a1), total(rest, a2)
    det = c11 * c22 - c12 * c12
    singular = np.abs(det) <= 1e-12
    safe = np.where(singular, 1.0, det)
    alpha1, alpha2 = (x1 * c22 - x2 * c12) / safe, (c11 * x2 - c12 * x1) / safe
    chord = np.hypot(*(p3 - p0).T)
    bad = singular | (alpha1 < 1e-6 * chord) | (alpha2 < 1e-6 * chord)
    alpha1, alpha2 = np.where(bad, chord / 3, alpha1), np.where(bad, chord / 3, alpha2)
    return p0 + alpha1[:, None] * t1, p3 + alpha2[:, None] * t2


def _newton(data: np.ndarray, u: np.ndarray, curve: tuple[np.ndarray, ...]) -> np.ndarray:
    """One Newton step of each parameter towards its point's nearest point on the curve."""
    p0, c1, c2, p3 = curve
    q = _bezier(u, p0, c1, c2, p3) - data
    v, w = (1.0 - u)[:, None], u[:, None]
    d1 = 3 * (v * v * (c1 - p0) + 2 * v * w * (c2 - c1) + w * w * (p3 - c2))
    d2 = 6 * (v * (c2 - 2 * c1 + p0) + w * (p3 - 2 * c2 + c1))
    num = q[:, 0] * d1[:, 0] + q[:, 1] * d1[:, 1]
    den = d1[:, 0] ** 2 + d1[:, 1] ** 2 + q[:, 0] * d2[:, 0] + q[:, 1] * d2[:, 1]
    step = np.divide(num, den, out=np.zeros_like(num), where=np.abs(den) > 1e-12)
    out: np.ndarray = np.clip(u - step, 0.0, 1.0)
    return out


def _bernstein(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    v = 1.0 - u
    return v**3, 3 * u * v * v, 3 * u * u * v, u**3


def _bezier(
    u: np.ndarray, p0: np.ndarray, c1: np.ndarray, c2: np.ndarray, p3: np.ndarray
) -> np.ndarray:
    b0, b1, b2, b3 = (w[:, None] for w in _bernstein(u))
    out: np.ndarray = b0 * p0 + b1 * c1 + b2 * c2 + b3 * p3
    return out


def _sorted(fitted: list[Spans]) -> Spans:
    a = np.concatenate([s[0] for s in fitted])
    order = np.argsort(a, kind="stable")
    b = np.concatenate([s[1] for s in fitted])
    return a[order], b[order], np.concatenate([s[2] for s in fitted])[order]


def _merged(trace: _Trace, spans: Spans, tolerance: float) -> Spans:
    """Neighbouring spans joined into one curve wherever one fits (a split falls where the
    worst point was, not where a join is needed); corners and loop starts stay joins. Pairs
    are counted within each loop, so a loop's curves do not depend on the loops fitted with
    it."""
    a, b, handles = spans
    for round_ in range(MERGE_ROUNDS):
        loop_of = np.searchsorted(trace.starts, a, side="right") - 1
        rank = np.arange(len(a)) - np.searchsorted(loop_of, loop_of)  # within its loop
        left = np.flatnonzero((rank[:-1] % 2 == round_ % 2) & (b[:-1] == a[1:]))
        left = left[~trace.corner[b[left]]]
        if not len(left):
            continue
        merged, _, err2 = _fit(trace, a[left], b[left + 1], tolerance)
        ok = err2 <= tolerance**2
        gone = left[ok] + 1
        b[left[ok]], handles[left[ok]] = b[gone], merged[ok]
        keep = np.ones(len(a), bool)
        keep[gone] = False
        a, b, handles = a[keep], b[keep], handles[keep]
    return a, b, handles


def _by_loop(trace: _Trace, spans: Spans) -> list[Segments]:
    """The spans (sorted), loop by loop, as [m, 3, 2] segments (C1, C2, P3)."""
    a, b, handles = spans
    segments = np.concatenate([handles, trace.pts[b][:, None]], axis=1)
    loop_of = np.searchsorted(trace.starts, a, side="right") - 1
    bounds = np.searchsorted(loop_of, np.arange(len(trace.starts) + 1))
    return np.split(segments, bounds[1:-1])


def is_line(start: np.ndarray, segment: np.ndarray) -> bool:
    """Whether a segment (C1, C2, P3) from ``start`` is a straight line (its handles on its
    ends, as ``fit_loops`` writes lines)."""
    return bool(np.array_equal(segment[0], start) and np.array_equal(segment[1], segment[2]))
