"""The data path: Preprocess hooks, AutoDatasets, the pipeline and DataModules."""
