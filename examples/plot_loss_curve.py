"""
Loss curves
===========

Every fit records its losses per epoch in ``history_``.
:class:`~skflash.plotting.LossCurveDisplay` plots them in the manner of scikit-learn's
Display API (``pip install 'skflash[plot]'`` for matplotlib). With ``early_stopping``,
the validation loss is drawn too and the epoch whose weights were kept is marked.
"""

from sklearn.datasets import load_diabetes

from skflash import FlashRegressor
from skflash.plotting import LossCurveDisplay

X, y = load_diabetes(return_X_y=True, as_frame=True)
reg = FlashRegressor(early_stopping=True, max_epochs=100, random_state=0).fit(X, y)
print(f"{reg.n_iter_} epochs; the last: {reg.history_[-1]}")

display = LossCurveDisplay.from_estimator(reg)

# %%
# The display's ``plot`` draws again, on axes of your choice, with a log scale:

log_scaled = display.plot(log_scale=True)
