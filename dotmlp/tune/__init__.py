"""Everything Ray Tune, one module per seam: the trainable that runs in a trial (`trainable`), the
search space (`space`), ASHA per task (`scheduler`), the MLflow runs written from the driver
(`mlflow_runs`), what a trial's record says it became (`status`), and the Tuner itself (`tuner`).

Trial workers import `dotmlp.tune.trainable` only: nothing here may import MLflow at module level.
"""
