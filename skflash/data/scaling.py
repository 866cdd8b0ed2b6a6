"""Standardisation statistics of training data: means and spreads, weighted, robust.

Learned in float64, chunk by chunk, from rows in memory or streamed in blocks (merged
block by block, or sampled for the quantiles); saved with the model as plain lists.
"""

from __future__ import annotations

import numpy as np
import torch

_CHUNK_ROWS = 16384


def _weighted_moments(x2: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of 2-D ``x2``: the total weight of its present (not NaN) values, their
    mean and standard deviation, in float64.

    Columns are divided by their largest magnitude first, so that values near the float
    limits do not overflow when squared. Missing values (NaN) are left out, each column
    on its own; a column with none present gets mean 0 and spread 0.
    """
    if x2.dtype.itemsize <= 4 and x2.dtype.kind == "f":
        return _single_pass_moments(x2, w)
    chunks = [slice(start, start + _CHUNK_ROWS) for start in range(0, len(x2), _CHUNK_ROWS)]
    magnitude = np.zeros(x2.shape[1])
    for chunk in chunks:
        magnitude = np.fmax(magnitude, np.fmax.reduce(np.abs(x2[chunk]), axis=0, initial=0.0))
    magnitude[magnitude == 0] = 1.0
    total = np.full(x2.shape[1], float(w.sum()))
    mean = sum((w[chunk] @ (x2[chunk] / magnitude) for chunk in chunks), np.zeros(x2.shape[1]))
    missing = bool(np.isnan(mean).any())
    present = np.nan_to_num if missing else (lambda values: values)
    if missing:  # each column's present values only
        total = sum((w[chunk] @ ~np.isnan(x2[chunk]) for chunk in chunks), np.zeros(x2.shape[1]))
        mean = sum(
            (w[chunk] @ np.nan_to_num(x2[chunk] / magnitude) for chunk in chunks),
            np.zeros(x2.shape[1]),
        )
    mean = np.divide(mean, total, out=np.zeros_like(mean), where=total > 0)
    var = sum(
        (w[chunk] @ present((x2[chunk] / magnitude - mean) ** 2) for chunk in chunks),
        np.zeros(x2.shape[1]),
    )
    var = np.divide(var, total, out=np.zeros_like(var), where=total > 0)
    return total, mean * magnitude, np.sqrt(var) * magnitude


def _single_pass_moments(
    x2: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_weighted_moments` of float32 (or narrower) data in one pass: its squares
    cannot overflow float64, so each chunk's moments are taken as they are and merged
    into the running ones (the parallel form of Welford's update)."""
    total = np.zeros(x2.shape[1])
    mean = np.zeros(x2.shape[1])
    squares = np.zeros(x2.shape[1])
    for start in range(0, len(x2), _CHUNK_ROWS):
        chunk = x2[start : start + _CHUNK_ROWS].astype(np.float64)
        weights = w[start : start + _CHUNK_ROWS]
        missing = np.isnan(chunk)
        if missing.any():  # each column's present values only
            count = weights @ ~missing
            chunk_mean = weights @ np.nan_to_num(chunk, copy=False)
        else:
            count = np.full(x2.shape[1], float(weights.sum()))
            chunk_mean = weights @ chunk
        chunk_mean = np.divide(chunk_mean, count, out=np.zeros_like(chunk_mean), where=count > 0)
        chunk -= chunk_mean
        chunk[missing] = 0.0
        np.square(chunk, out=chunk)
        merged = total + count
        share = np.divide(count, merged, out=np.zeros_like(count), where=merged > 0)
        delta = chunk_mean - mean
        squares += weights @ chunk + delta**2 * total * share
        mean += delta * share
        total = merged
    var = np.divide(squares, total, out=np.zeros_like(squares), where=total > 0)
    return total, mean, np.sqrt(var)


#: The smallest spread a column is divided by (a smaller one is taken as constant): the
#: smallest normal float32, so that the spread and its inverse both hold in float32, the
#: narrowest dtype a model is fed and its predictions are scaled back in.
_SMALLEST_SCALE = float(np.finfo(np.float32).tiny)


def _usable_scale(center: np.ndarray, scale: np.ndarray, rows: int) -> np.ndarray:
    """``scale`` with 1 where a column is constant, so that dividing by it is safe.

    Constant means a spread within the rounding error of computing it in float64 from
    ``rows`` values around ``center`` (the bound of Chan, Golub and LeVeque that
    scikit-learn's StandardScaler also applies): a column such as ``0.1`` plus float noise
    is constant, while one whose values are all tiny but differ is scaled, however small
    they are (down to :data:`_SMALLEST_SCALE`). The test is on the spread itself, not its
    square, which could overflow.
    """
    noise = rows * np.finfo(np.float64).eps
    scale = np.array(scale, dtype=np.float64)
    rounding = scale * np.sqrt(max(1.0 - noise, 0.0)) <= noise * np.abs(center)
    scale[rounding | ~(scale >= _SMALLEST_SCALE)] = 1.0  # NaN included
    return scale


def weighted_mean_scale(
    x: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (weighted), in float64, chunk by chunk.

    A constant column gets scale 1, so that dividing by it is safe.
    """
    x2 = x.reshape(len(x), -1)
    w = np.ones(len(x2)) if weights is None else np.asarray(weights, dtype=np.float64)
    _, mean, scale = _weighted_moments(x2, w)
    scale = _usable_scale(mean, scale, len(x2))
    return mean.reshape(x.shape[1:]), scale.reshape(x.shape[1:])


class StreamedMeanScale:
    """Means and standard deviations (weighted) of data seen in blocks, never held whole.

    Each block's moments are merged into the running ones (the parallel form of Welford's
    update), so the result equals :func:`weighted_mean_scale` of all rows at once.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.rows = 0  # the bound on rounding error grows with the values summed
        self.mean: np.ndarray | None = None
        self.sum_squares: np.ndarray | None = None

    def add(self, x: np.ndarray, weights: np.ndarray | None = None) -> None:
        x2 = x.reshape(len(x), -1)
        w = np.ones(len(x2)) if weights is None else np.asarray(weights, dtype=np.float64)
        if not w.sum() > 0:
            return
        total, mean, scale = _weighted_moments(x2, w)
        self.rows += len(x2)
        if self.mean is None:
            self.total, self.mean, self.sum_squares = total, mean, total * scale**2
            return
        combined = self.total + total  # per column: missing values are left out
        share = np.divide(total, combined, out=np.zeros_like(total), where=combined > 0)
        delta = mean - self.mean
        self.sum_squares = self.sum_squares + total * scale**2 + delta**2 * self.total * share
        self.mean = self.mean + delta * share
        self.total = combined

    def mean_scale(self, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None:
            raise ValueError("No rows with a positive weight to learn the scaling from.")
        variance = np.divide(
            self.sum_squares, self.total, out=np.zeros_like(self.total), where=self.total > 0
        )
        scale = np.sqrt(variance)
        scale = _usable_scale(self.mean, scale, self.rows)
        return self.mean.reshape(shape), scale.reshape(shape)


def robust_center_scale(
    x: np.ndarray, weights: np.ndarray | None = None, max_rows: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Column medians and interquartile ranges (weighted), for scaling that outliers do
    not distort.

    Quantiles are the weighted inverted CDF (no interpolation), so an integer weight is
    the same as repeating the row. Where the quartiles coincide, half the range is the
    scale; a constant column gets scale 1. Missing values (NaN) are left out (a column
    of nothing else gets median 0). Above ``max_rows`` rows a fixed random subset of that
    size is used.
    """
    x2 = x.reshape(len(x), -1)
    w = np.ones(len(x2)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(x2) > max_rows:
        rows = np.sort(np.random.default_rng(0).choice(len(x2), max_rows, replace=False))
        x2, w = x2[rows], w[rows]
    order = np.argsort(x2, axis=0, kind="stable")  # NaN sorts last
    ordered = np.take_along_axis(x2, order, axis=0).astype(np.float64)
    present = ~np.isnan(ordered)
    cumulative = np.cumsum(w[order] * present, axis=0)
    columns = np.arange(x2.shape[1])

    def quantile(p: float) -> np.ndarray:
        found = ordered[np.argmax(cumulative >= p * cumulative[-1], axis=0), columns]
        return np.nan_to_num(found)  # a column with no value present

    median = quantile(0.5)
    scale = quantile(0.75) - quantile(0.25)
    spread = np.zeros(x2.shape[1])
    if len(ordered):
        spread = np.nan_to_num(np.fmax.reduce(ordered) - np.fmin.reduce(ordered))
    scale = _usable_scale(median, np.where(scale > 0, scale, 0.5 * spread), len(x2))
    return median.reshape(x.shape[1:]), scale.reshape(x.shape[1:])


def smooth_clip(x: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """``x / sqrt(1 + (x / 3)^2)`` on the first ``columns`` columns (all if None): about
    ``x`` near zero, never beyond 3 in magnitude, so outliers cannot dominate a step."""
    if columns is None:
        return x * torch.rsqrt(1 + (x / 3) ** 2)
    head, tail = x[..., :columns], x[..., columns:]  # tail may be empty
    return torch.cat([head * torch.rsqrt(1 + (head / 3) ** 2), tail], dim=-1)


#: Rows sampled from streamed data to learn the robust scaling (medians and quartiles).
ROBUST_SAMPLE_ROWS = 100_000


class RowSample:
    """A uniform sample of at most ``size`` rows of data seen in blocks (with their weights):
    each row draws a random key and the rows with the smallest keys are kept."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.x: np.ndarray | None = None
        self.w = np.zeros(0)
        self.keys = np.zeros(0)

    def add(self, x: np.ndarray, weights: np.ndarray | None) -> None:
        w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        keys = self.rng.random(len(x))
        if self.x is not None:
            x, w, keys = (np.concatenate(p) for p in ((self.x, x), (self.w, w), (self.keys, keys)))
        if len(keys) > self.size:
            kept = np.argpartition(keys, self.size)[: self.size]
            x, w, keys = x[kept], w[kept], keys[kept]
        self.x, self.w, self.keys = x, w, keys

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.w
