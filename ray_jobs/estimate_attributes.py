"""Estimate demographic attributes with the estimators configured in params.yaml (estimate_attributes.estimators)
on a Ray actor pool. With none configured it only passes the dataset through.

Local:   python ray_jobs/estimate_attributes.py --params RUN/params.resolved.yaml --input DIR/label
           --output DIR/estimate --run-id ID
Cluster: set ray.dashboard_url in params.yaml and the DAG submits this launcher as a Ray job; or set
         ray.address / estimate_attributes.ray_address and this process joins that cluster. DIR and the model
         folders must be readable on every node.
         --previous names an earlier estimate_attributes folder to reuse; --estimator NAME (repeatable) runs
         only those.
"""

import argparse
import logging

from emopipe.config import load_params
from emopipe.pipelines import estimate_attributes

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", required=True)
    parser.add_argument("--input", required=True, help="dataset folder with clips and features (label_clips output)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--previous", default=None, help="an earlier estimate_attributes folder to reuse rows from")
    parser.add_argument("--estimator", action="append", help="run only these configured estimators")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = load_params(args.params)
    estimate_attributes.run(
        params, args.input, args.output, args.run_id, previous=args.previous, estimators=args.estimator
    )
