"""Writes the sine-regression data of the Neural Tangents paper's first example.

5 noisy training points x ~ U(-pi, pi), y = sin(x) + 0.1 * N(0, 1), and 50 test points
evenly spaced on [-pi, pi] with their noiseless targets. The .npy files next to this
script were written by it (python3 make_data.py), so the README's command needs no Python.
"""
import pathlib

import numpy as np

here = pathlib.Path(__file__).parent
rng = np.random.default_rng(10)
x_train = rng.uniform(-np.pi, np.pi, size=(5, 1))
y_train = np.sin(x_train) + 0.1 * rng.standard_normal(size=(5, 1))
x_test = np.linspace(-np.pi, np.pi, 50).reshape(50, 1)
np.save(here / "x_train.npy", x_train)
np.save(here / "y_train.npy", y_train)
np.save(here / "x_test.npy", x_test)
np.save(here / "y_test.npy", np.sin(x_test))
