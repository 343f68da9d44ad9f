"""A profile whose PCA arrays have the wrong shape is a damaged profile, refused at load.

The fold PCAs (``pca.fold<j>.*``) were read as they were: a file whose fold directions had another
width (a damaged or hand-edited file) loaded, and ``pca_drift`` raised "could not broadcast input
array from shape (2,3) into shape (2,4)" on the first batch it scored. Stated: such a file, or one
missing a fold array, gives ``ProfileError`` saying "damaged profile" and naming the array; an
intact one loads with its folds.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from monitor.profile import Profile, ProfileError, profile_of
from monitor.reference import Reference


def _rewritten(src: Path, dst: Path, name: str, array: np.ndarray | None) -> Path:
    """``src`` with the member ``name`` replaced by ``array`` (dropped when None)."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        for member in z.namelist():
            data = z.read(member)
            if member == name:
                if array is None:
                    continue
                buf = io.BytesIO()
                np.save(buf, array)
                data = buf.getvalue()
            out.writestr(member, data)
    return dst


@pytest.mark.parametrize(("name", "array", "says"), [
    ("pca.fold3.components.npy", np.zeros((2, 3)), r"pca\.fold3\.components has shape \(2, 3\)"),
    ("pca.fold0.mean.npy", np.zeros(5), r"pca\.fold0\.mean has shape \(5,\)"),
    ("pca.scale.npy", np.ones(3), r"pca\.scale has shape \(3,\)"),
    ("pca.fold7.scale.npy", None, r"pca\.fold7\.scale"),
])
def test_a_fold_array_of_another_shape_is_a_damaged_profile(tmp_path: Path, name: str, array: np.ndarray | None,
                                                             says: str) -> None:
    rng = np.random.default_rng(2)
    saved = profile_of(Reference.from_arrays(rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4)))).save(tmp_path / "p.npz")
    assert len(Profile.load(saved).pca.folds) == 10
    with pytest.raises(ProfileError, match=r"damaged profile .*" + says):
        Profile.load(_rewritten(saved, tmp_path / "bad.npz", name, array))
