"""
Serving without Python: ONNX export
===================================

:meth:`~skflash.FlashRegressor.to_onnx` writes one ONNX graph holding everything
``predict`` does: the learned scaling, the category codes, the network and the output in
the target's units. onnxruntime answers the same as ``predict``, to within 1e-4.
Needs ``pip install 'skflash[onnx]'``.
"""

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from skflash import FlashRegressor

X, y = load_diabetes(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
reg = FlashRegressor(max_epochs=50, random_state=0).fit(X_train, y_train)

# %%
# Export and run
# --------------
# Numeric columns go in as one float32 input named ``numeric``, in their training order.

with tempfile.TemporaryDirectory() as folder:
    session = ort.InferenceSession(reg.to_onnx(Path(folder) / "model.onnx"))
    (predictions,) = session.run(None, {"numeric": X_test.to_numpy("float32")})

print("inputs:", [i.name for i in session.get_inputs()])
print("largest difference from predict:", np.abs(predictions.ravel() - reg.predict(X_test)).max())
