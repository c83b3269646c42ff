"""The quality gate: Great Expectations suites built from quality/*.yaml and schemas/, run on every dataset."""
