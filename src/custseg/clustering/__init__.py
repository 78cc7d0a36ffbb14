"""Clustering: scaling, choosing k, K-means (scikit-learn, or Spark MLlib), the estimator."""
