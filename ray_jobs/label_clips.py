"""Label every clip with the labelers configured in params.yaml (label_clips.labelers) on a Ray actor pool.

Local:   python ray_jobs/label_clips.py --params RUN/params.resolved.yaml \
         --input DIR/extract --output DIR/label --run-id ID
Cluster: set ray.dashboard_url in params.yaml and the DAG submits this launcher as a Ray job; or set
         ray.address / label_clips.ray_address and this process joins that cluster. DIR and the model folders
         must be readable on every node.
         --previous names an earlier labels.parquet to reuse; --labeler NAME (repeatable) runs only those labelers.
"""

import argparse
import logging

from emopipe.config import load_params
from emopipe.pipelines import label_clips

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", required=True)
    parser.add_argument("--input", required=True, help="folder with clips.parquet and features.parquet")
    parser.add_argument("--output", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--previous", default=None, help="an earlier label_clips folder to reuse rows from")
    parser.add_argument("--labeler", action="append", help="run only these configured labelers")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = load_params(args.params)
    label_clips.run(params, args.input, args.output, args.run_id, previous=args.previous, labelers=args.labeler)
