"""Read the records of an offline W&B run file (run-<id>.wandb) with wandb's own protobuf classes.

The file is a LevelDB-style log: a 7-byte file header, then 32 KiB blocks of chunks, each with
a 7-byte header (CRC-32, little-endian length, chunk type) in front of its bytes. Chunks of
type FULL hold one record; FIRST, MIDDLE and LAST hold the pieces of a longer one.
"""

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, position = [], b"", HEADER
    while position + HEADER <= len(data):
        room = BLOCK - position % BLOCK
        if room < HEADER:
            position += room
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        position += HEADER
        if kind == 0 and length == 0:
            break
        pending += data[position:position + length]
        position += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def run_summary(path: Path) -> dict:
    """Return the run's name, group, job type, config and final summary as plain Python values."""
    info = {"config": {}, "summary": {}, "history": []}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info.update(name=record.run.display_name, group=record.run.run_group, job_type=record.run.job_type)
            info["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            info["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or "/".join(item.nested_key)
                info["summary"][key] = json.loads(item.value_json)
        elif kind == "history":
            info["history"].append({(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in record.history.item})
    return info
