"""The model matrix's blocked products equal the dense ones.

Every fit of the environment model (the forward selection, the threshold sweeps, the
converged profiles, the zone-clustered inflation) computes X v, X'r and X'WX through
``model._Blocks``: per device type only the columns that are not zero, each kept
transposed, X'WX summed over pieces of ``model.INFO_ROWS`` rows. Known truth here: the
same products of the dense matrix, with numpy. The segments are longer than a piece
(the pieces are summed), a hinge column moves (``set_col``), a type's columns are split
off (``moved``) and a copy moves apart from its original.
"""

from __future__ import annotations

import numpy as np

from tsfleet.environment import model


def _matrix(rng, n_rows: list[int], p: int = 7) -> tuple[np.ndarray, list[slice]]:
    """A model matrix of one segment per type: column 0 is nonzero only in the first
    segment, column p - 1 only in the last (each a type's own column)."""
    x = rng.normal(size=(sum(n_rows), p))
    bounds = np.concatenate([[0], np.cumsum(n_rows)])
    segs = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    x[segs[0].stop:, 0] = 0.0
    x[: segs[-1].start, p - 1] = 0.0
    return x, segs


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    return bool(np.allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max()))


def test_the_blocked_products_equal_the_dense_ones():
    rng = np.random.default_rng(5)
    rows = [model.INFO_ROWS * 2 + 17, 5, model.INFO_ROWS + 1]
    x, segs = _matrix(rng, rows)
    xb = model._Blocks(x, segs)
    n, p = x.shape
    mu, r, v = rng.uniform(0.1, 2.0, n), rng.normal(size=n), rng.normal(size=p)
    dense_info = (x.T * mu) @ x
    assert _close(xb.info(mu, True), dense_info, 1e-12)
    assert _close(xb.info(mu, False), dense_info, 1e-5)      # single-precision products
    assert _close(xb.tmul(r), x.T @ r, 1e-12)
    assert _close(xb.mul(v, n), x @ v, 1e-12)
    # two types' own columns never meet: their entry is an exact zero
    assert xb.info(mu, True)[0, p - 1] == dense_info[0, p - 1] == 0.0


def test_a_moved_column_a_copy_and_a_split_view_follow_the_dense_matrix():
    rng = np.random.default_rng(6)
    x, segs = _matrix(rng, [model.INFO_ROWS + 100, model.INFO_ROWS * 3])
    n, p = x.shape
    xb = model._Blocks(x, segs)
    other = xb.copy()
    new = rng.normal(size=n)
    xb.set_col(3, new)                       # a hinge at another threshold
    moved = x.copy()
    moved[:, 3] = new
    mu, v = rng.uniform(0.1, 2.0, n), rng.normal(size=p)
    assert _close(xb.info(mu, True), (moved.T * mu) @ moved, 1e-12)
    assert _close(xb.mul(v, n), moved @ v, 1e-12)
    # the copy kept the old column
    assert _close(other.mul(v, n), x @ v, 1e-12)
    # the second segment's columns 1 and 2 split off into new columns p and p + 1
    split = xb.moved(1, [1, 2], [p, p + 1])
    wide = np.zeros((n, p + 2))
    wide[:, :p] = moved
    wide[segs[1], p:] = moved[segs[1], 1:3]
    wide[segs[1], 1:3] = 0.0
    w = rng.normal(size=p + 2)
    assert _close(split.mul(w, n), wide @ w, 1e-12)
    assert _close(split.tmul(mu), wide.T @ mu, 1e-12)
    assert _close(split.info(mu, True), (wide.T * mu) @ wide, 1e-12)
