"""Benchmarks: FlashRegressor against LinearRegression, MLPRegressor, skorch and hand loops."""
