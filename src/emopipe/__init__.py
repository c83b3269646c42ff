"""emopipe: emotion-recognition corpora to versioned, validated, model-labelled datasets.

Importing this package imports nothing heavy (no torch, ray, cv2, airflow).
"""

__version__ = "0.1.0"
