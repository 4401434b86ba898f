#!/usr/bin/env python3
"""Prints each YAML document of the files given as one JSON line, so that the
Rust tests (tests/it/deploy.rs) can check the deploy manifests without a YAML
crate. Needs PyYAML (installs it with pip when missing)."""
import json
import subprocess
import sys

try:
    import yaml
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "pyyaml"])
    import yaml

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if doc is not None:
                print(json.dumps({"file": path, "doc": doc}))
