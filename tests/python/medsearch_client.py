"""A MedSearch client in Python, as a hospital integrator would write one: stubs generated from our proto with
Debian's protoc and gRPC plugin, then Stats, Search (by case, by embedding with a filter, by image), Classify
and Ingest against a running server. Prints one JSON object per call for the calling test to check.

Usage: medsearch_client.py SERVER_ADDRESS PROTO_ROOT WORK_DIR CASE_KEY
"""
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path


def generate_stubs(proto_root: Path, out: Path) -> None:
    protos = [str(p.relative_to(proto_root)) for p in proto_root.glob("google/api/*.proto")]
    protos.append("medsearch/v1/medsearch.proto")
    subprocess.run(
        ["protoc", f"-I{proto_root}", "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
         f"--python_out={out}", f"--grpc_python_out={out}", *protos],
        check=True)
    # No __init__.py files: `google` must stay a namespace package shared with the installed google.protobuf.


def png(width: int, height: int, seed: int) -> bytes:
    """A grey 8-bit PNG with a gradient, written by hand so the test needs no imaging library."""
    rows = b"".join(b"\x00" + bytes(((x * 3 + y * 5 + seed * 17) % 256) for x in range(width)) for y in range(height))
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main() -> None:
    address, proto_root, work, case_key = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    generate_stubs(proto_root, work)
    sys.path.insert(0, str(work))
    import grpc
    from medsearch.v1 import medsearch_pb2 as pb
    from medsearch.v1 import medsearch_pb2_grpc as rpc

    def say(call: str, **fields) -> None:
        print(json.dumps({"call": call, **fields}), flush=True)

    with grpc.insecure_channel(address) as channel:
        search = rpc.SearchServiceStub(channel)
        collection = rpc.CollectionServiceStub(channel)
        cases = rpc.CaseServiceStub(channel)

        stats = collection.Stats(pb.StatsRequest())
        say("stats", cases=stats.cases, dimensions=stats.dimensions, model_id=stats.model_id)

        by_case = search.Search(pb.SearchRequest(case_id=case_key, k=5, filter=pb.Filter(modalities=["ct"])))
        say("search_case", keys=[n.key for n in by_case.neighbours],
            modalities=[n.metadata["modality"] for n in by_case.neighbours])

        stored = cases.Get(pb.GetRequest(case_id=case_key, include_embedding=True))
        by_embedding = search.Search(pb.SearchRequest(embedding=pb.Embedding(values=list(stored.embedding)), k=3))
        say("search_embedding", keys=[n.key for n in by_embedding.neighbours],
            similarities=[n.similarity for n in by_embedding.neighbours])

        by_image = search.Search(pb.SearchRequest(image=png(64, 48, 1), image_name="gradient.png", k=4))
        say("search_image", count=len(by_image.neighbours), model_id=by_image.model_id)

        decision = search.Classify(pb.ClassifyRequest(
            search=pb.SearchRequest(case_id=case_key, k=9, exclude_query_case=True),
            weighting=pb.WEIGHTING_SOFTMAX, temperature=0.05))
        say("classify", labels={d.label: {"score": d.score, "positive": d.positive, "threshold": d.threshold} for d in decision.labels},
            neighbours=len(decision.neighbours))

        try:
            search.Search(pb.SearchRequest(case_id=case_key, k=0))
            say("bad_k", code="OK")
        except grpc.RpcError as error:
            say("bad_k", code=error.code().name, detail=error.details())

        def files():
            for i in range(2):
                yield pb.IngestRequest(name=f"python/{i}.png", file=png(40 + i, 40, 10 + i), labels=["from-python"])
        results = list(cases.Ingest(files()))
        say("ingest", outcomes=[pb.IngestOutcome.Name(r.outcome) for r in results], keys=[r.key for r in results])


if __name__ == "__main__":
    main()
