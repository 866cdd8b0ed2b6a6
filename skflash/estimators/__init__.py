"""scikit-learn estimators built on the Flash core."""
