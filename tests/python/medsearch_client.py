"""A MedSearch client in Python, as a hospital integrator would write one: stubs generated from our proto with
Debian's protoc and gRPC plugin, then Stats, Search (by case, by embedding with a filter, by image), Classify
and Ingest against a running server; then the same searches and a classification as plain HTTP/JSON through the
server's JSON transcoding, with nothing but the standard library. Prints one JSON object per call for the calling
test to check.

Usage: medsearch_client.py SERVER_ADDRESS PROTO_ROOT WORK_DIR CASE_KEY HTTP_BASE_URL
"""
import json
import struct
import subprocess
import sys
import urllib.request
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
    address, proto_root, work, case_key, http_base = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5]
    generate_stubs(proto_root, work)
    sys.path.insert(0, str(work))
    import grpc
    from medsearch.v1 import medsearch_pb2 as pb
    from medsearch.v1 import medsearch_pb2_grpc as rpc

    def say(call: str, **fields) -> None:
        print(json.dumps({"call": call, **fields}), flush=True)

    def post_json(path: str, body: dict) -> dict:
        """A plain HTTP/1.1 POST of a JSON body to a transcoded route (proto3 JSON: lowerCamelCase fields)."""
        request = urllib.request.Request(http_base.rstrip("/") + path, data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read().decode("utf-8"))

    def evidence(neighbours) -> list:
        """Each neighbour as the vote sees it: key, similarity and labels, from a gRPC message or a JSON object."""
        if neighbours and isinstance(neighbours[0], dict):
            return [{"key": n["key"], "similarity": n.get("similarity", 0.0), "labels": n.get("labels", [])} for n in neighbours]
        return [{"key": n.key, "similarity": n.similarity, "labels": list(n.labels)} for n in neighbours]

    def decisions(labels) -> dict:
        if labels and isinstance(labels[0], dict):
            return {d["label"]: {"score": d.get("score", 0.0), "positive": d.get("positive", False), "threshold": d.get("threshold", 0.0)}
                    for d in labels}
        return {d.label: {"score": d.score, "positive": d.positive, "threshold": d.threshold} for d in labels}

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

        decision = search.Classify(pb.ClassifyRequest(
            search=pb.SearchRequest(case_id=case_key, k=9, exclude_query_case=True),
            weighting=pb.WEIGHTING_SOFTMAX, temperature=0.05))
        say("classify", weighting="softmax", temperature=0.05, labels=decisions(decision.labels),
            neighbours=evidence(decision.neighbours))

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

        # The first ingested image, sent again as a query: it must find itself.
        by_image = search.Search(pb.SearchRequest(image=png(40, 40, 10), image_name="python-0.png", k=4))
        say("search_image", neighbours=evidence(by_image.neighbours), model_id=by_image.model_id)

    # The same queries as plain HTTP/JSON through JSON transcoding: no gRPC, no stubs.
    json_case = post_json("/v1/search", {"caseId": case_key, "k": 5, "filter": {"modalities": ["ct"]}})
    say("json_search_case", keys=[n["key"] for n in json_case.get("neighbours", [])],
        modalities=[n.get("metadata", {}).get("modality") for n in json_case.get("neighbours", [])])

    json_embedding = post_json("/v1/search", {"embedding": {"values": list(stored.embedding)}, "k": 3})
    say("json_search_embedding", keys=[n["key"] for n in json_embedding.get("neighbours", [])],
        similarities=[n.get("similarity", 0.0) for n in json_embedding.get("neighbours", [])])

    json_decision = post_json("/v1/classify", {"search": {"caseId": case_key, "k": 9, "excludeQueryCase": True},
                                               "weighting": "WEIGHTING_UNIFORM"})
    say("json_classify", weighting="uniform", labels=decisions(json_decision.get("labels", [])),
        neighbours=evidence(json_decision.get("neighbours", [])))


if __name__ == "__main__":
    main()
