"""skbolt: LSH-sparse neural networks (BOLT / SLIDE family) on CPUs behind
the scikit-learn estimator API."""
from .classifier import BoltClassifier
from .graph import NeighborhoodFeatures
from .io import load
from .recommender import BoltRecommender
from .sequential import BoltSequentialRecommender

__version__ = "0.1.0"

__all__ = ["BoltClassifier", "BoltRecommender", "BoltSequentialRecommender",
           "NeighborhoodFeatures", "load", "__version__"]
