"""The Hilbert layout must be an exact bijection that keeps genomic neighbours adjacent."""

import numpy as np
import pytest

from atacdenoise.tracks.hilbert import (
    from_grid,
    grid_permutation,
    index_to_xy,
    order_for_length,
    to_grid,
    xy_to_index,
)


@pytest.mark.parametrize("order", range(1, 8))
def test_every_cell_visited_exactly_once(order):
    side = 2**order
    x, y = index_to_xy(np.arange(4**order), order)
    assert x.min() >= 0 and y.min() >= 0 and x.max() < side and y.max() < side
    cells = y * side + x
    assert np.array_equal(np.sort(cells), np.arange(4**order))


@pytest.mark.parametrize("order", range(1, 8))
def test_xy_to_index_inverts_index_to_xy(order):
    d = np.arange(4**order)
    x, y = index_to_xy(d, order)
    assert np.array_equal(xy_to_index(x, y, order), d)
    # and the other way round, over the whole grid
    gy, gx = np.mgrid[0 : 2**order, 0 : 2**order]
    back_x, back_y = index_to_xy(xy_to_index(gx, gy, order), order)
    assert np.array_equal(back_x, gx) and np.array_equal(back_y, gy)


@pytest.mark.parametrize("order", range(1, 8))
def test_consecutive_positions_are_grid_neighbours(order):
    x, y = index_to_xy(np.arange(4**order), order)
    steps = np.abs(np.diff(x)) + np.abs(np.diff(y))
    assert np.all(steps == 1)


def test_scalar_and_shaped_inputs():
    x, y = index_to_xy(np.array([[0, 1], [2, 3]]), 1)
    assert x.shape == (2, 2)
    assert int(xy_to_index(np.int64(1), np.int64(0), 1)) == 3


def test_to_grid_round_trip_with_batch_axes():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 2, 4096)).astype(np.float32)
    grid = to_grid(values)
    assert grid.shape == (3, 2, 64, 64) and grid.dtype == np.float32
    assert np.array_equal(from_grid(grid), values)
    # every value appears exactly once in its own grid
    assert np.array_equal(np.sort(grid[1, 0].ravel()), np.sort(values[1, 0]))


def test_to_grid_places_curve_start_and_neighbours():
    values = np.arange(16)
    grid = to_grid(values)
    assert grid[0, 0] == 0
    x, y = index_to_xy(values, 2)
    assert np.array_equal(grid[y, x], values)


def test_permutation_is_cached_and_read_only():
    perm = grid_permutation(1024)
    assert perm is grid_permutation(1024)
    assert not perm.flags.writeable
    values = np.arange(1024)
    assert np.array_equal(to_grid(values).reshape(1024)[perm], values)


@pytest.mark.parametrize("length,order", [(1, 0), (4, 1), (16, 2), (4096, 6), (4**7, 7)])
def test_order_for_length(length, order):
    assert order_for_length(length) == order


@pytest.mark.parametrize("length", [0, 2, 8, 32, 1000, 4095, 8192, -4])
def test_order_for_length_rejects_non_powers_of_four(length):
    with pytest.raises(ValueError, match="power of 4"):
        order_for_length(length)


def test_to_grid_rejects_bad_length():
    with pytest.raises(ValueError):
        to_grid(np.zeros(100))


def test_out_of_range_indices_rejected():
    with pytest.raises(ValueError):
        index_to_xy(np.array([16]), 2)
    with pytest.raises(ValueError):
        xy_to_index(np.array([4]), np.array([0]), 2)


@pytest.mark.parametrize("order", [1, 3, 6])  # 6: the 4096-bin windows of the models
def test_mapping_equals_the_hilbertcurve_package(order):
    hilbertcurve = pytest.importorskip("hilbertcurve.hilbertcurve",
                                       reason="hilbertcurve (dev extra) not installed: no reference to compare with")
    curve = hilbertcurve.HilbertCurve(order, 2)
    positions = np.arange(4**order)
    reference = np.array(curve.points_from_distances(positions.tolist()))
    x, y = index_to_xy(positions, order)
    np.testing.assert_array_equal(np.stack([x, y], axis=1), reference)
    np.testing.assert_array_equal(xy_to_index(x, y, order), curve.distances_from_points(reference.tolist()))
