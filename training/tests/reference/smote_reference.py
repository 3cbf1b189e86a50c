#!/usr/bin/env python3
"""Reference values of training/tests/sampling.rs: imbalanced-learn's SMOTE and numpy's
legacy RandomState on a small closed-form array.

    python3 -m venv .deps/imb-venv && .deps/imb-venv/bin/pip install imbalanced-learn==0.14.1
    .deps/imb-venv/bin/python training/tests/reference/smote_reference.py

Data: 9 minority rows (label 1) and 12 majority rows (label 0) of 6 float32 features,
x[i, j] = ((i * 2654435761 + j * 40503 + 17 * i * j) % 1000) / 64 (exact in float32).
"""
import numpy as np
import imblearn
import sklearn
from imblearn.over_sampling import SMOTE
from sklearn.neighbors import NearestNeighbors

N_MIN, N_MAJ, D = 9, 12, 6


def data():
    i = np.arange(N_MIN + N_MAJ, dtype=np.int64)[:, None]
    j = np.arange(D, dtype=np.int64)[None, :]
    x = ((i * 2654435761 + j * 40503 + 17 * i * j) % 1000).astype(np.float32) / 64
    y = np.array([1] * N_MIN + [0] * N_MAJ)
    return x, y


def main():
    print(f"imbalanced-learn {imblearn.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    rs = np.random.RandomState(42)
    print("RandomState(42).randint(0, 27, 8) =", rs.randint(0, 27, 8).tolist())
    print("then .uniform(0, 1, 3) =", [repr(v) for v in rs.uniform(0, 1, 3)])
    rs = np.random.RandomState(7)
    print("RandomState(7).randint(0, 1000, 5) =", rs.randint(0, 1000, 5).tolist())
    x, y = data()
    xm = x[y == 1]
    for k, n_new in [(3, 7), (5, 11)]:
        nn = NearestNeighbors(n_neighbors=k + 1).fit(xm)
        dist, idx = nn.kneighbors(xm)
        assert (idx[:, 0] == np.arange(N_MIN)).all()
        assert (np.diff(dist, axis=1) > 1e-6).all(), "ties in the neighbour order"
        sm = SMOTE(k_neighbors=k, random_state=42, sampling_strategy={1: N_MIN + n_new})
        xr, yr = sm.fit_resample(x, y)
        new = xr[len(x):]
        assert new.dtype == np.float32 and (yr[len(x):] == 1).all()
        print(f"k={k}: neighbours = {idx[:, 1:].tolist()}")
        print(f"k={k}: {n_new} synthetic rows (float32 bits):")
        for row in new:
            print("    [" + ", ".join(f"0x{v:08x}" for v in row.view(np.uint32)) + "],")


if __name__ == "__main__":
    main()
