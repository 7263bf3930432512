#!/usr/bin/env python3
"""An independent Thanos StoreAPI client for tests.

Generates Python stubs from the .proto files with grpcio-tools into a temporary directory
(nothing from our Rust code is involved), calls one RPC and prints the answer as JSON.
Chunks are decoded here, in Python: XOR chunks to samples (Prometheus chunkenc format) and
their xxhash64 checked against Chunk.hash.

Needs: pip install grpcio grpcio-tools protobuf

  storeapi_client.py --proto-dir DIR --addr HOST:PORT info
  storeapi_client.py ... series [--min-time MS] [--max-time MS] [--matcher NAME OP VALUE]...
                                [--skip-chunks] [--batch-size N] [--limit N]
  storeapi_client.py ... label-names [--start MS] [--end MS] [--matcher ...]
  storeapi_client.py ... label-values --label NAME [--start MS] [--end MS] [--matcher ...]

Sample values are printed as the 64-bit pattern of the float (an integer), so NaNs and
staleness markers compare exactly.
"""

import argparse
import base64
import importlib
import json
import os
import struct
import sys
import tempfile

PROTOS = [
    "store/labelpb/types.proto",
    "store/storepb/types.proto",
    "store/storepb/rpc.proto",
    "store/hintspb/hints.proto",
    "info/infopb/rpc.proto",
]

MAX_MSG = 2**31 - 1
MIN_I64 = -(2**63)
MAX_I64 = 2**63 - 1


def generate_stubs(proto_dir):
    from grpc_tools import protoc

    try:
        from importlib.resources import files

        wkt = str(files("grpc_tools") / "_proto")
    except Exception:  # older Pythons
        import pkg_resources

        wkt = pkg_resources.resource_filename("grpc_tools", "_proto")
    out = tempfile.mkdtemp(prefix="storeapi-stubs-")
    args = ["protoc", "-I" + proto_dir, "-I" + wkt, "--python_out=" + out, "--grpc_python_out=" + out]
    if protoc.main(args + PROTOS) != 0:
        sys.exit("grpc_tools.protoc failed on " + proto_dir)
    sys.path.insert(0, out)
    return out


# --- xxhash64 (seed 0), after the xxHash specification ---------------------------------

P1 = 0x9E3779B185EBCA87
P2 = 0xC2B2AE3D27D4EB4F
P3 = 0x165667B19E3779F9
P4 = 0x85EBCA77C2B2AE63
P5 = 0x27D4EB2F165667C5
M64 = 2**64 - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    acc = (acc + lane * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def _merge(acc, val):
    acc ^= _round(0, val)
    return (acc * P1 + P4) & M64


def xxh64(data, seed=0):
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + P1 + P2) & M64
        v2 = (seed + P2) & M64
        v3 = seed
        v4 = (seed - P1) & M64
        while i + 32 <= n:
            a, b, c, d = struct.unpack_from("<4Q", data, i)
            v1, v2, v3, v4 = _round(v1, a), _round(v2, b), _round(v3, c), _round(v4, d)
            i += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & M64
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        (k,) = struct.unpack_from("<Q", data, i)
        h ^= _round(0, k)
        h = (_rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        (k,) = struct.unpack_from("<I", data, i)
        h ^= (k * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return h


# --- Prometheus XOR chunk decoding ------------------------------------------------------


class Bits:
    def __init__(self, data):
        self.data = data
        self.pos = 0  # in bits

    def bit(self):
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise ValueError("XOR chunk ends early at bit %d" % self.pos)
        b = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n):
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def uvarint(self):
        x, s = 0, 0
        for _ in range(10):
            b = self.bits(8)
            x |= (b & 0x7F) << s
            if b < 0x80:
                return x
            s += 7
        raise ValueError("varint overflow")

    def varint(self):
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)


def to_i64(u):
    u &= M64
    return u - 2**64 if u >= 2**63 else u


def decode_xor(data):
    """(t, float64 bits) pairs of a Prometheus XOR chunk."""
    if len(data) < 2:
        raise ValueError("XOR chunk shorter than its 2-byte header")
    (count,) = struct.unpack_from(">H", data, 0)
    br = Bits(data[2:])
    out = []
    t = tdelta = 0
    vbits = 0
    leading = trailing = 0
    for i in range(count):
        if i == 0:
            t = br.varint()
            vbits = br.bits(64)
        else:
            if i == 1:
                tdelta = br.uvarint()
            else:
                d = 0
                for _ in range(4):
                    d <<= 1
                    if br.bit() == 0:
                        break
                    d |= 1
                size = {0b0: 0, 0b10: 14, 0b110: 17, 0b1110: 20}.get(d)
                if size is None:  # 0b1111
                    dod = to_i64(br.bits(64))
                elif size == 0:
                    dod = 0
                else:
                    raw = br.bits(size)
                    if raw > (1 << (size - 1)):
                        raw -= 1 << size
                    dod = raw
                tdelta = to_i64(tdelta + dod)
            t = to_i64(t + tdelta)
            # value
            if br.bit() == 1:
                if br.bit() == 1:
                    leading = br.bits(5)
                    sig = br.bits(6)
                    if sig == 0:
                        sig = 64
                    trailing = 64 - leading - sig
                sig = 64 - leading - trailing
                vbits ^= br.bits(sig) << trailing
        out.append([t, vbits])
    return out


# --- RPCs ----------------------------------------------------------------------------------


def labels_json(labels):
    return {l.name: l.value for l in labels}


def chunk_json(pb, c, min_time, max_time, part):
    enc = pb.Chunk.Encoding.Name(c.type)
    data = bytes(c.data)
    out = {
        "part": part,
        "min_time": min_time,
        "max_time": max_time,
        "encoding": enc,
        "hash": c.hash,
        "hash_ok": c.hash == xxh64(data),
        "size": len(data),
    }
    if enc == "XOR":
        out["samples"] = decode_xor(data)
    else:
        out["data_b64"] = base64.b64encode(data).decode()
    return out


def matchers(pb, specs):
    ops = {"=": "EQ", "!=": "NEQ", "=~": "RE", "!~": "NRE"}
    return [pb.LabelMatcher(type=pb.LabelMatcher.Type.Value(ops[op]), name=n, value=v) for n, op, v in specs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info")
    for name in ("series", "label-names", "label-values"):
        p = sub.add_parser(name)
        p.add_argument("--matcher", nargs=3, action="append", default=[], metavar=("NAME", "OP", "VALUE"))
        if name == "series":
            p.add_argument("--min-time", type=int, default=MIN_I64)
            p.add_argument("--max-time", type=int, default=MAX_I64)
            p.add_argument("--skip-chunks", action="store_true")
            p.add_argument("--batch-size", type=int, default=0)
            p.add_argument("--limit", type=int, default=0)
        else:
            p.add_argument("--start", type=int, default=MIN_I64)
            p.add_argument("--end", type=int, default=MAX_I64)
        if name == "label-values":
            p.add_argument("--label", required=True)
    args = ap.parse_args()

    generate_stubs(os.path.abspath(args.proto_dir))
    import grpc

    pb = importlib.import_module("store.storepb.types_pb2")
    rpc = importlib.import_module("store.storepb.rpc_pb2")
    rpc_grpc = importlib.import_module("store.storepb.rpc_pb2_grpc")
    info_pb = importlib.import_module("info.infopb.rpc_pb2")
    info_grpc = importlib.import_module("info.infopb.rpc_pb2_grpc")

    channel = grpc.insecure_channel(
        args.addr,
        options=[("grpc.max_receive_message_length", MAX_MSG), ("grpc.max_send_message_length", MAX_MSG)],
    )
    try:
        if args.cmd == "info":
            r = info_grpc.InfoStub(channel).Info(info_pb.InfoRequest(), timeout=args.timeout)
            out = {
                "label_sets": [labels_json(s.labels) for s in r.label_sets],
                "component_type": r.ComponentType,
                "store": None,
            }
            if r.HasField("store"):
                s = r.store
                out["store"] = {
                    "min_time": s.min_time,
                    "max_time": s.max_time,
                    "supports_sharding": s.supports_sharding,
                    "supports_without_replica_labels": s.supports_without_replica_labels,
                    "tsdb_infos": [
                        {"labels": labels_json(t.labels.labels), "min_time": t.min_time, "max_time": t.max_time}
                        for t in s.tsdb_infos
                    ],
                }
        elif args.cmd == "series":
            req = rpc.SeriesRequest(
                min_time=args.min_time,
                max_time=args.max_time,
                matchers=matchers(pb, args.matcher),
                skip_chunks=args.skip_chunks,
                response_batch_size=args.batch_size,
                limit=args.limit,
            )
            series, warnings, hints = [], [], []

            def add(s):
                chunks = []
                for ac in s.chunks:
                    for part in ("raw", "count", "sum", "min", "max", "counter"):
                        if ac.HasField(part):
                            chunks.append(chunk_json(pb, getattr(ac, part), ac.min_time, ac.max_time, part))
                series.append({"labels": labels_json(s.labels), "chunks": chunks})

            for resp in rpc_grpc.StoreStub(channel).Series(req, timeout=args.timeout):
                kind = resp.WhichOneof("result")
                if kind == "series":
                    add(resp.series)
                elif kind == "batch":
                    for s in resp.batch.series:
                        add(s)
                elif kind == "warning":
                    warnings.append(resp.warning)
                elif kind == "hints":
                    hints.append(resp.hints.type_url)
            out = {"series": series, "warnings": warnings, "hints": hints}
        elif args.cmd == "label-names":
            r = rpc_grpc.StoreStub(channel).LabelNames(
                rpc.LabelNamesRequest(start=args.start, end=args.end, matchers=matchers(pb, args.matcher)),
                timeout=args.timeout,
            )
            out = {"names": list(r.names), "warnings": list(r.warnings)}
        else:
            r = rpc_grpc.StoreStub(channel).LabelValues(
                rpc.LabelValuesRequest(
                    label=args.label, start=args.start, end=args.end, matchers=matchers(pb, args.matcher)
                ),
                timeout=args.timeout,
            )
            out = {"values": list(r.values), "warnings": list(r.warnings)}
    except grpc.RpcError as e:
        json.dump({"error": {"code": e.code().name, "message": e.details()}}, sys.stdout)
        sys.stdout.write("\n")
        return 2
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
