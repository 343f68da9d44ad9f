"""Reference files of images, audio, sequences: an array of 3 or more dimensions, profiled through its descriptors.

``monitor reference build images.npy`` refused the file, naming its shape (a reference file was
2-D data only), so that an image model's reference had to be built in code
(``Reference.from_arrays``) and saved by hand. An ``.npy`` of shape ``(n, c, h, w)``, or an
``.npz`` whose ``X`` is (with the model's ``scores`` and the ``labels`` beside it, as for 2-D
data), is now ``n`` rows of one tensor feature, described row by row as live inputs of that shape
are (:mod:`monitor.tensor`), and profiled with the tensor feature kept. The ``.npy`` is read
through a memory map, chunk by chunk: a file of images larger than the memory is profiled too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from monitor.profile import Profile, ProfileError, _read_npz

__all__ = ["holds_tensor", "tensor_profile"]


def holds_tensor(path: str | Path) -> bool:
    """Whether ``path`` is an ``.npy``, or an ``.npz`` with ``X`` (or ``numeric``), of 3 or more
    dimensions; read from the arrays' headers only. False for anything it cannot read (the 2-D
    readers then say what is wrong with it)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, mmap_mode="r", allow_pickle=False).ndim >= 3
        if suffix == ".npz":
            import zipfile

            with zipfile.ZipFile(p) as archive:
                members = set(archive.namelist())
                member = "X.npy" if "X.npy" in members else "numeric.npy" if "numeric.npy" in members else None
                if member is None or "meta.json.npy" in members:  # no data array, or a saved profile
                    return False
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    return len(read(f)[0]) >= 3
    except Exception:  # noqa: BLE001 - unreadable here: the 2-D readers refuse it with their fix
        return False
    return False


def tensor_profile(path: str | Path, *, roles: dict[str, Any], classes: Sequence[str] = (), n_bins: int,
                   keep_rows: int, seed: int, pca_fit: str | Path | None = None, unnamed_as: Sequence[str] = (),
                   channel_axis: int | None = None) -> Profile:
    """The profile of the tensor rows in ``path`` (:func:`holds_tensor`), with an ``.npz``'s
    ``scores`` and ``labels``.

    Parameters
    ----------
    roles
        Column roles given (``--output-columns``...: option -> value), refused: an array of images
        has no columns to give them to.
    unnamed_as
        The tensor feature's name, when one (``--feature-names image``); else the ``.npz``'s
        ``feature_names``, else ``input``.
    pca_fit
        A file of rows of the same shape whose descriptors the PCA's directions are fitted on.
    channel_axis
        The channels' axis of the array, where its shape does not tell
        (:func:`monitor.tensor.find_channel_axis`).
    """
    from monitor.reference import Reference

    p = Path(path)
    given = [option for option, value in roles.items() if value]
    if given:
        where = ("give the model's outputs and the labels as its 'scores' and 'labels' arrays" if p.suffix.lower() == ".npz"
                 else "put the model's outputs and the labels in an .npz beside the rows (numpy.savez(path, X=images, "
                      "scores=probabilities, labels=labels))")
        raise ProfileError(f"{given[0]}: {p.name} is an array of {_shape(p)} (images, audio, sequences: one tensor "
                           f"feature), which has no columns. Fix: remove {', '.join(given)}; {where}")
    rows, names, scores, labels = _arrays(p)
    if len(unnamed_as) > 1:
        raise ProfileError(f"--feature-names names {len(unnamed_as)} features ({', '.join(unnamed_as)}); {p.name} is "
                           "one tensor feature. Fix: give it one name (--feature-names image), or none (input)")
    name = tuple(unnamed_as) or names
    fit = None
    if pca_fit is not None:
        if not holds_tensor(pca_fit):
            raise ProfileError(f"--pca-fit: {Path(pca_fit).name} is not an array of rows like {p.name}'s "
                               f"({_shape(p)}). Fix: give the training images as an .npy (or an .npz's X) of that shape")
        fit = _arrays(Path(pca_fit))[0]
    try:
        ref = Reference.from_arrays(rows, numeric_names=name or None, scores=scores, labels=labels,
                                    classes=tuple(classes), pca_fit=fit, channel_axis=channel_axis)
    except ValueError as err:
        raise ProfileError(f"{p.name}: {err}") from None
    meta: dict[str, Any] = {"source": p.name}
    if pca_fit is not None:
        meta["pca_fit_source"] = Path(pca_fit).name
    return Profile.from_reference(ref, n_bins=n_bins, keep_rows=keep_rows, seed=seed, meta=meta)


def _shape(path: Path) -> str:
    try:
        if path.suffix.lower() == ".npy":
            return "shape " + str(tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape))
    except Exception:  # noqa: BLE001 - only for a message
        pass
    return "3 or more dimensions"


def _arrays(path: Path) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None, np.ndarray | None]:
    """The rows (a memory map of an ``.npy``), the ``.npz``'s feature name, scores and labels."""
    if path.suffix.lower() == ".npy":
        rows = np.load(path, mmap_mode="r", allow_pickle=False)
        if rows.dtype.kind not in "biuf":
            raise ProfileError(f"{path.name}: an array of images must hold numbers, got dtype {rows.dtype}")
        return rows, (), None, None
    rows, names, categorical, _, scores, labels = _read_npz(path, tensor=True)
    if categorical.shape[1]:
        raise ProfileError(f"{path.name}: 'X' of shape {rows.shape} is one tensor feature (images, audio, sequences), "
                           "the model's whole input: it takes no 'categorical' beside it. Fix: save the rows alone, "
                           "with 'scores' and 'labels'")
    return rows, names[:1], scores, labels
