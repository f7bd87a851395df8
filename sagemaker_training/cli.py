"""``sagemaker-training``: the user-facing command line."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="sagemaker-training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="run this host's training job from $SAGEMAKER_BASE_DIR (the container entrypoint)")
    sub.add_parser("local", add_help=False,
                   help="run a whole training job on this machine, as the platform would (see: local --help)")
    sub.add_parser("serve", add_help=False,
                   help="a local SageMaker control plane for the SDKs, boto3 and the AWS CLI (see: serve --help)")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.command == "train":
        from .train import main as train_main

        train_main(rest)
    elif args.command == "local":
        from .local.command import main as local_main

        sys.exit(local_main(rest))
    elif args.command == "serve":
        from .serve.command import main as serve_main

        sys.exit(serve_main(rest))
