"""Exports of a published version in the formats trainers read, and the documents that describe a version.

- `api`: `export(ds, options)`, `Options`, `open_version`: one export folder per (version, format, fold).
- `hf`, `webdataset`, `r1omni`: the writers of each format; `base`, `plan`, `media`, `staging`: what they share
  (the clips of a fold, media resolved and checked, resumable units).
- `card`, `croissant`, `facts`: the dataset card (README.md, Hugging Face YAML) and croissant.json written at
  publish, from the facts every corpus ships with.
"""
