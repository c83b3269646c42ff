"""Pipeline stages: pure functions over Arrow tables plus thin Ray Data callables."""
