"""Run every benchmark in this folder (each module's `main()` returns a dict) and write results/<name>.json."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import platform
import sys
from datetime import UTC, datetime

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks reuse the test-corpus generators in tests/corpora.py


def main() -> int:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    for path in sorted(HERE.glob("*.py")):
        if path.name == pathlib.Path(__file__).name:
            continue
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.main([])
        result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        result["machine"] = f"{platform.machine()}, {platform.python_version()}"
        (results / f"{path.stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
