"""Probe every clip's media on a Ray actor pool.

Local:   python ray_jobs/probe_clips.py --params RUN/params.resolved.yaml \
         --input DIR/ingest --output DIR/probe --run-id ID
Cluster: set ray.dashboard_url in params.yaml and the DAG submits this launcher as a Ray job; or set
         ray.address / probe_clips.ray_address and this process joins that cluster. The corpus root and DIR must
         be on storage every node can read.
"""

import argparse
import logging

from emopipe.config import load_params
from emopipe.pipelines import probe_clips

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", required=True)
    parser.add_argument("--input", required=True, help="folder with clips.parquet from ingest")
    parser.add_argument("--output", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--previous", default=None, help="an earlier probe_clips folder to reuse rows from")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = load_params(args.params)
    probe_clips.run(params, args.input, args.output, args.run_id, previous=args.previous)
