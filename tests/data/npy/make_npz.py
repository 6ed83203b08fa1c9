# Writes the .npz files of tests/data/npy (run from this folder with NumPy; see README.md).
import zipfile

import numpy as np

x = np.random.default_rng(21).integers(0, 256, size=(12, 2, 3), dtype=np.uint8)  # as images_u8.npy
y = np.arange(12) % 3
v = np.stack([0.5 * np.arange(12), -np.arange(12.0)], axis=1)
np.savez("xy_stored.npz", x=x, y=y)
np.savez_compressed("xy_deflated.npz", x=x, y=v)
np.savez("xy_positional.npz", x, y)
np.savez("xy_other_names.npz", images=x, labels=y)
# A member compressed with bzip2 (ZIP method 12), which NumPy never writes.
with zipfile.ZipFile("xy_bzip2.npz", "w", compression=zipfile.ZIP_BZIP2) as z:
    for name, a in (("x", x), ("y", y)):
        with z.open(name + ".npy", "w") as f:
            np.lib.format.write_array(f, a)
