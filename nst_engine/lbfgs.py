"""Batched optimizers in which every batch item is its own problem.

One forward/backward pass evaluates all items that still need an evaluation; each item keeps
its own L-BFGS history (s, y, rho), direction, step length and line-search state, so a pair
gives the same result alone or in any batch (up to float noise of batched convolutions).

Both optimizers work on flat rows x [B, N] through two calls per round:
  trial(items)       -> the points [k, N] at which `items` need f and g next
  update(items, f, g) -> which of them completed an iteration (and which cannot go on)
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import torch

# A curvature pair is kept when y.s > CURVATURE_EPS * |y| |s|, a test that does not depend on the
# objective's scale. torch's absolute test (y.s > 1e-10) drops every pair of a small objective
# (content 1 / style 1e6 on random weights: y.s ~ 1e-12), leaving steepest descent: a silent crawl.
CURVATURE_EPS = 1e-8
# Strong Wolfe constants (Nocedal & Wright, ch. 3) and the evaluations one line search may use.
WOLFE_C1, WOLFE_C2, WOLFE_MAX_EVALS = 1e-4, 0.9, 20


@dataclass
class RoundResult:
    completed: torch.Tensor  # [k] bool: the item finished an iteration this round
    stalled: torch.Tensor  # [k] bool: the item cannot make progress (no descent direction or step)
    zero_gradient: torch.Tensor | None = None  # [k] bool: ... because its gradient is exactly 0


class BatchLBFGS:
    """Per-item L-BFGS on x [B, N] with optional box bounds (projected, active-set directions).

    line_search "fixed": one evaluation per iteration, step lr (the first iteration's step is
    lr / |g|_1). "wolfe": each item runs its own strong-Wolfe line
    search (bracketing then zoom with cubic interpolation), one trial per round.
    """

    def __init__(self, x: torch.Tensor, f: torch.Tensor, g: torch.Tensor, *, history: int, lr: float,
                 line_search: str = "fixed", bounds: tuple[float, float] | None = (0.0, 1.0)) -> None:
        batch, n = x.shape
        self.x, self.f, self.g = x.clone(), f.clone(), g.clone()
        self.history, self.lr, self.line_search, self.bounds = history, lr, line_search, bounds
        self.S = x.new_zeros(batch, history, n)
        self.Y = x.new_zeros(batch, history, n)
        self.rho = x.new_zeros(batch, history)
        self.count = torch.zeros(batch, dtype=torch.long, device=x.device)  # pairs held
        self.head = torch.zeros(batch, dtype=torch.long, device=x.device)  # next slot to write
        self.first = torch.ones(batch, dtype=torch.bool, device=x.device)
        self.d = torch.zeros_like(x)
        self.t = x.new_zeros(batch)
        self.trial_x = x.clone()
        self.searches: dict[int, Generator[float, tuple[float, float], float]] = {}
        self._best: dict[int, _Trial] = {}  # per item: its line search's lowest-loss trial so far
        self.no_direction = torch.zeros(batch, dtype=torch.bool, device=x.device)
        self.zero_gradient = torch.zeros(batch, dtype=torch.bool, device=x.device)

    # ---- public rounds ------------------------------------------------------------------
    def trial(self, items: torch.Tensor) -> torch.Tensor:
        starting = items if self.line_search == "fixed" else items[
            torch.tensor([int(i) not in self.searches for i in items.tolist()], dtype=torch.bool, device=items.device)]
        if len(starting):
            self._start_iteration(starting)
        return self.trial_x[items]

    def update(self, items: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> RoundResult:
        if self.line_search == "fixed":
            return self._update_fixed(items, f, g)
        return self._update_wolfe(items, f, g)

    def pairs_held(self) -> torch.Tensor:
        return self.count.clone()

    # ---- an iteration's start: direction and first trial ------------------------------
    def _start_iteration(self, items: torch.Tensor) -> None:
        x, g = self.x[items], self.g[items]
        blocked = self._blocked(x, g)
        free_g = g.masked_fill(blocked, 0.0) if blocked is not None else g
        d = -self._two_loop(items, free_g)
        if blocked is not None:
            d = d.masked_fill(blocked, 0.0)
        slope = (free_g * d).sum(dim=1)
        bad = ~(slope < 0) | ~torch.isfinite(slope)  # history gave no descent direction: steepest descent
        if bad.any():
            d[bad] = -free_g[bad]
            slope = (free_g * d).sum(dim=1)
        first = self.first[items]
        l1 = free_g.abs().sum(dim=1).clamp_min(1e-30)
        # First step: lr / |g|_1 (torch's rule, without its cap at 1, which made the first step of a
        # small objective tiny); later the history's scaling y.s / y.y sizes the step. Both are
        # independent of the objective's scale.
        t = torch.where(first, self.lr / l1, torch.full_like(l1, self.lr))
        self.no_direction[items] = ~(slope < 0)
        self.zero_gradient[items] = free_g.abs().amax(dim=1) == 0
        self.d[items] = d
        self.t[items] = t
        self.trial_x[items] = self._project(x + t[:, None] * d)
        if self.line_search == "wolfe":
            for row, item in enumerate(items.tolist()):
                search = _strong_wolfe(float(self.f[item]), float(slope[row]), float(t[row]))
                next(search)  # runs to its first trial: t, already placed
                self.searches[item] = search

    def _blocked(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor | None:
        """Pixels at a bound whose gradient pushes them out: held fixed this iteration."""
        if self.bounds is None:
            return None
        low, high = self.bounds
        return ((x <= low) & (g > 0)) | ((x >= high) & (g < 0))

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.bounds is None else x.clamp(*self.bounds)

    def _two_loop(self, items: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """H g by the L-BFGS two-loop recursion, each row with its own history."""
        count, head = self.count[items], self.head[items]
        depth = int(count.max()) if len(items) else 0
        q = g.clone()
        if depth == 0:
            return q
        m = self.history
        alphas: list[torch.Tensor] = []
        slots: list[torch.Tensor] = []
        for k in range(depth):  # newest to oldest
            slot = (head - 1 - k) % m
            valid = (k < count).to(g.dtype)
            s, y = self.S[items, slot], self.Y[items, slot]
            alpha = self.rho[items, slot] * (s * q).sum(dim=1) * valid
            q -= alpha[:, None] * y
            alphas.append(alpha)
            slots.append(slot)
        newest = (head - 1) % m
        s, y = self.S[items, newest], self.Y[items, newest]
        gamma = torch.where(count > 0, (s * y).sum(dim=1) / (y * y).sum(dim=1).clamp_min(1e-30),
                            torch.ones_like(alphas[0]))
        r = q * gamma[:, None]
        for k in reversed(range(depth)):  # oldest to newest
            slot = slots[k]
            valid = (k < count).to(g.dtype)
            s, y = self.S[items, slot], self.Y[items, slot]
            beta = self.rho[items, slot] * (y * r).sum(dim=1)
            r += s * ((alphas[k] - beta) * valid)[:, None]
        return r

    # ---- accepting a step ---------------------------------------------------------------
    def _accept(self, items: torch.Tensor, x_new: torch.Tensor, f_new: torch.Tensor, g_new: torch.Tensor) -> None:
        s = x_new - self.x[items]
        y = g_new - self.g[items]
        ys = (s * y).sum(dim=1)
        keep = ys > CURVATURE_EPS * (s.norm(dim=1) * y.norm(dim=1))
        keep &= torch.isfinite(ys)
        if keep.any():
            kept = items[keep]
            slot = self.head[kept]
            self.S[kept, slot] = s[keep]
            self.Y[kept, slot] = y[keep]
            self.rho[kept, slot] = 1.0 / ys[keep]
            self.head[kept] = (slot + 1) % self.history
            self.count[kept] = torch.clamp(self.count[kept] + 1, max=self.history)
        self.x[items], self.f[items], self.g[items] = x_new, f_new, g_new
        self.first[items] = False

    def _update_fixed(self, items: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> RoundResult:
        finite = torch.isfinite(f)
        stalled = self.no_direction[items] | ~finite
        ok = ~stalled
        if ok.any():
            self._accept(items[ok], self.trial_x[items[ok]], f[ok], g[ok])
        return RoundResult(completed=ok, stalled=stalled, zero_gradient=self.zero_gradient[items])

    def _update_wolfe(self, items: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> RoundResult:
        completed = torch.zeros(len(items), dtype=torch.bool, device=items.device)
        stalled = torch.zeros_like(completed)
        fs = f.tolist()
        for row, item in enumerate(items.tolist()):
            t = float(self.t[item])
            x_t = self.trial_x[item]
            path = (x_t - self.x[item]) / t  # the projected path's direction at this step
            slope = float((g[row] * path).sum()) if math.isfinite(fs[row]) else math.nan
            record = _Trial(t, fs[row], x_t.clone(), g[row].clone())
            best = self._best.get(item)
            if math.isfinite(record.f) and (best is None or record.f < best.f):
                self._best[item] = record
            try:
                t_next = self.searches[item].send((fs[row] if math.isfinite(fs[row]) else math.inf, slope))
            except StopIteration as stop:
                del self.searches[item]
                accepted = float(stop.value)
                chosen = self._best.pop(item, None)
                if accepted <= 0 or chosen is None or not chosen.f < float(self.f[item]):
                    stalled[row] = True
                    continue
                index = items[row:row + 1]
                self._accept(index, chosen.x[None], torch.tensor([chosen.f], dtype=f.dtype, device=f.device),
                             chosen.g[None])
                completed[row] = True
                continue
            self.t[item] = t_next
            self.trial_x[item] = self._project(self.x[item] + t_next * self.d[item])
        return RoundResult(completed=completed, stalled=stalled, zero_gradient=self.zero_gradient[items])


@dataclass
class _Trial:
    t: float
    f: float
    x: torch.Tensor
    g: torch.Tensor


def _strong_wolfe(f0: float, slope0: float, t: float, c1: float = WOLFE_C1, c2: float = WOLFE_C2,
                  max_evals: int = WOLFE_MAX_EVALS) -> Generator[float, tuple[float, float], float]:
    """One item's strong-Wolfe line search as a coroutine: yields trial steps, receives
    (f(t), f'(t)) and returns the accepted step (0 when no step decreased f).

    The accepted step is the last trial when it meets both conditions, else the lowest-f
    trial that met the sufficient-decrease condition (the caller keeps that trial's point).
    """
    evals = 0
    t_prev, f_prev, d_prev = 0.0, f0, slope0
    best_t, best_f = 0.0, f0
    while True:
        f, d = yield t
        evals += 1
        armijo = f <= f0 + c1 * t * slope0
        if armijo and f < best_f:
            best_t, best_f = t, f
        if not armijo or (evals > 1 and f >= f_prev):
            return (yield from _zoom(f0, slope0, (t_prev, f_prev, d_prev), (t, f, d), c1, c2,
                                     max_evals - evals, best_t))
        if abs(d) <= -c2 * slope0:
            return t
        if d >= 0:
            return (yield from _zoom(f0, slope0, (t, f, d), (t_prev, f_prev, d_prev), c1, c2,
                                     max_evals - evals, best_t))
        if evals >= max_evals:
            return best_t
        low, high = t + 0.01 * (t - t_prev), t * 10
        t_next = _cubic_minimum(t_prev, f_prev, d_prev, t, f, d, low, high)
        t_prev, f_prev, d_prev = t, f, d
        t = t_next


def _zoom(f0: float, slope0: float, lo: tuple[float, float, float], hi: tuple[float, float, float], c1: float,
          c2: float, evals_left: int, best_t: float) -> Generator[float, tuple[float, float], float]:
    """Shrink [lo, hi] (lo: lowest f meeting sufficient decrease) until a strong-Wolfe step."""
    best_t = lo[0] if lo[0] > 0 else best_t
    for _ in range(max(evals_left, 0)):
        a, b = sorted((lo[0], hi[0]))
        if b - a < 1e-9 * max(b, 1e-30):
            break
        t = _cubic_minimum(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2], a + 0.1 * (b - a), b - 0.1 * (b - a))
        f, d = yield t
        if f > f0 + c1 * t * slope0 or f >= lo[1]:
            hi = (t, f, d)
            continue
        best_t = t
        if abs(d) <= -c2 * slope0:
            return t
        if d * (hi[0] - lo[0]) >= 0:
            hi = lo
        lo = (t, f, d)
    return best_t


def _cubic_minimum(t1: float, f1: float, d1: float, t2: float, f2: float, d2: float, low: float,
                   high: float) -> float:
    """Minimiser of the cubic through (t1, f1, d1) and (t2, f2, d2), clipped to [low, high];
    the interval's middle when the cubic has none (or the values are not finite)."""
    if not all(math.isfinite(v) for v in (t1, f1, d1, t2, f2, d2)):
        return (low + high) / 2 if math.isfinite(high) else low
    e1 = d1 + d2 - 3 * (f1 - f2) / (t1 - t2) if t1 != t2 else math.nan
    radicand = e1 * e1 - d1 * d2 if math.isfinite(e1) else -1.0
    if radicand < 0:
        return (low + high) / 2
    e2 = math.sqrt(radicand)
    if t1 > t2:
        t1, f1, d1, t2, f2, d2 = t2, f2, d2, t1, f1, d1
    denominator = d2 - d1 + 2 * e2
    if denominator == 0:
        return (low + high) / 2
    t = t2 - (t2 - t1) * (d2 + e2 - e1) / denominator
    return min(max(t, low), high)


class BatchAdam:
    """Per-item Adam (torch's update rule) with the pixels projected into bounds each step."""

    def __init__(self, x: torch.Tensor, *, lr: float, bounds: tuple[float, float] | None = (0.0, 1.0),
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.x = x.clone()
        self.lr, self.bounds, self.betas, self.eps = lr, bounds, betas, eps
        self.m = torch.zeros_like(x)
        self.v = torch.zeros_like(x)
        self.steps = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)

    def trial(self, items: torch.Tensor) -> torch.Tensor:
        return self.x[items]

    def update(self, items: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> RoundResult:
        beta1, beta2 = self.betas
        finite = torch.isfinite(f)
        self.steps[items] += 1
        step = self.steps[items].to(g.dtype)[:, None]
        m = self.m[items] * beta1 + (1 - beta1) * g
        v = self.v[items] * beta2 + (1 - beta2) * g * g
        self.m[items], self.v[items] = m, v
        update = (m / (1 - beta1 ** step)) / ((v / (1 - beta2 ** step)).sqrt() + self.eps)
        x = self.x[items] - self.lr * update
        self.x[items] = x if self.bounds is None else x.clamp(*self.bounds)
        return RoundResult(completed=finite, stalled=~finite, zero_gradient=torch.zeros_like(finite))
