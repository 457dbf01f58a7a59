"""Results: estimates, covariances, tests, summaries, prediction, save and load."""
