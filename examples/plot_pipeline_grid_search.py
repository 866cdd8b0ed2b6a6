"""
Pipelines, cross-validation and grid search
===========================================

A :class:`~skflash.FlashRegressor` is a scikit-learn estimator like any other: it goes
into a :class:`~sklearn.pipeline.Pipeline`, is scored by
:func:`~sklearn.model_selection.cross_val_score`, and its parameters, the routed
``backbone__`` and ``optimizer__`` ones included, are searched by
:class:`~sklearn.model_selection.GridSearchCV`.
"""

import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflash import FlashRegressor

X, y = load_diabetes(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# Cross-validation
# ----------------
# The network trains for 100 epochs here (200 by default), with every other default:
# a two-layer MLP, AdamW, a cosine schedule, standardised inputs and target.

pipe = make_pipeline(StandardScaler(), FlashRegressor(max_epochs=100, random_state=0))
flash_scores = cross_val_score(pipe, X_train, y_train, cv=3)
linear_scores = cross_val_score(LinearRegression(), X_train, y_train, cv=3)
print(f"FlashRegressor R2: {flash_scores.mean():.3f}, LinearRegression: {linear_scores.mean():.3f}")

# %%
# Grid search
# -----------
# Steps' parameters are named ``<step>__<parameter>``; skflash's routed parameters add
# one more level: ``flashregressor__backbone__hidden_sizes`` reaches the MLP.

grid = GridSearchCV(
    pipe,
    {
        "flashregressor__backbone__hidden_sizes": [(32,), (64, 64)],
        "flashregressor__learning_rate": [1e-3, 3e-3],
    },
    cv=3,
)
grid.fit(X_train, y_train)
results = pd.DataFrame(grid.cv_results_)
print(results[["params", "mean_test_score", "mean_fit_time"]].to_string(index=False))
print(f"best: {grid.best_params_}, test R2 {grid.score(X_test, y_test):.3f}")

# %%
# In a notebook, the fitted search shows as a diagram; each "?" links to the
# estimator's page in this documentation.

grid
