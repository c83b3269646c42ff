"""Attribute estimators: demographic attributes a corpus does not record, estimated from faces or voices by a model,
audited as instruments (on the corpora that do record them) before any estimate enters a bias table.

- `vocabulary`: the vocabularies of schemas/estimated_demographics.yaml, and how a corpus's own values normalise
  onto them.
- `models`: the face (image-classification) and audio (audio-classification) transformers checkpoints.
- `stage`: one configured estimator as a stage (emopipe.stages.base.Stage).
- `audit`: the instrument audit, the join of trusted estimates into the attributes the bias tables read, the share
  left unknown, and the facts a dataset card or Croissant's RAI fields report.
"""
