"""Extract sampled frames, faces and audio features for every clip on a Ray actor pool (incremental).

Local:   python ray_jobs/extract_features.py --params RUN/params.resolved.yaml \
         --input DIR/probe --output DIR/extract --run-id ID
Cluster: set ray.dashboard_url in params.yaml and the DAG submits this launcher as a Ray job (its driver joins
         the cluster that runs it); or set ray.address / extract_features.ray_address and this process joins that
         cluster. The corpus roots and DIR must be on storage every node can read. --previous names an earlier
         features.parquet to reuse.
"""

import argparse
import logging

from emopipe.config import load_params
from emopipe.pipelines import extract_features

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", required=True)
    parser.add_argument("--input", required=True, help="folder with clips.parquet from probe_clips")
    parser.add_argument("--output", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--previous", default=None, help="an earlier extract_features folder to reuse rows from")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = load_params(args.params)
    extract_features.run(params, args.input, args.output, args.run_id, previous=args.previous)
