#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the golden vectors in
tests/vectors/protocol/ (and, for the JSON vendor protocol, which has no
vectors, from the frames of docs/protocol/csp.md section 8).

Each seed is written under the SHA-1 of its bytes, as libFuzzer names corpus
files, so running this again adds nothing twice. Run it from anywhere:

    python3 fuzz/seed_corpus.py

then fuzz, and minimise with `cargo fuzz cmin -s none <target>`.

Input layouts (see fuzz/fuzz_targets/*_checks.rs):
- `*_frame`: one frame;
- `*_stream`: one chunk-size byte, then the byte stream;
- `csp_authenticate`: records of a 2-byte big-endian length and a CSP frame;
- `jt808_body`: a selector byte (bit 0: 2019 layout; the rest: index into
  `BODY_IDS`), then the body;
- `jt808_reassemble`: a limits byte, then a stream of frames.
"""

import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "protocol"
CORPUS = ROOT / "fuzz" / "corpus"

# jt808_checks.rs BODY_IDS, in order.
BODY_IDS = [0x0001, 0x8001, 0x0002, 0x0100, 0x8100, 0x0102, 0x0200, 0x0704, 0x0900]
CHUNKS = [1, 3, 7, 0xFF]
NOISE = b"\x00noise\xff"


def cases(name):
    return json.loads((VECTORS / name).read_text())["cases"]


def write(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def records(frames):
    return [len(f).to_bytes(2, "big") + f for f in frames]


def seed_stream(target, frames):
    """Every frame alone, and all of them with noise between, per chunk size."""
    joined = NOISE.join(frames)
    for c in CHUNKS:
        write(target, bytes([c]) + joined)
    for f in frames:
        write(target, bytes([0xFF]) + f)


def seed_frames(prefix, frames, good):
    for f in frames:
        write(prefix + "_frame", f)
    seed_stream(prefix + "_stream", good)


def csp():
    frames, good = [], []
    for c in cases("csp.json"):
        f = bytes.fromhex(c["input"]["hex"])
        frames.append(f)
        if "expect" in c:
            good.append(f)
    auth = [[bytes.fromhex(h) for h in c["input"]["frames"]] for c in cases("csp_authenticate.json")]
    for seq in auth + [good]:
        frames.extend(seq)
        write("csp_authenticate", b"".join(records(seq)))
    seed_frames("csp", frames, good)
    seed_stream("csp_raw_stream", good)


def vendor_json():
    bms = {"soc": 80, "soh": 97, "vol": 5432, "cur": -150, "temp": 31, "cycle": 12,
           "cellMin": 3301, "cellMax": 3350, "prot": 0}
    bodies = [
        ("login", {"fw": "1.4.2", "model": "CS-12", "doorCount": 12}),
        ("heartbeat", {"uptime": 3600, "csq": 21}),
        ("status", {"doors": [
            {"no": 1, "st": 0, "bat": "", "soc": 0, "vol": 0, "temp": 25},
            {"no": 2, "st": 1, "bat": "200001", "soc": 55, "vol": 5210, "temp": 31}]}),
        ("doorOpen", {"no": 3, "ref": "c-9"}),
        ("doorClose", {"no": 3}),
        ("doorFail", {"no": 3, "err": 2, "ref": None}),
        ("batIn", {"no": 3, "bat": "200001", "bms": bms}),
        ("batOut", {"no": 3, "bat": "200001", "bms": None}),
        ("swapDone", {"orderNo": "900000001", "code": 0, "in": "200001", "out": "200002"}),
        ("alarm", {"type": "temp", "no": 4, "on": 1, "val": 65}),
        ("timeReq", {"ts": 1700000000}),
        ("reply", {"ref": "c-9", "code": 0}),
        ("openDoor", {"no": 3, "why": "swapIn", "orderNo": "900000001"}),
        ("swap", {"orderNo": "900000001", "inNo": 3, "outNo": 5, "outBat": "200002",
                  "expectBat": None, "expire": 1700000060}),
        ("setTime", {"ts": 1700000000000, "tz": 480}),
        ("query", None),
    ]
    frames = []
    for i, (cmd, data) in enumerate(bodies):
        obj = {"sn": "20001", "msgId": "m-%d" % i, "cmd": cmd}
        if data is not None:
            obj["data"] = data
        body = json.dumps(obj, separators=(",", ":")).encode()
        frames.append(len(body).to_bytes(4, "big") + body)
    seed_frames("vendor_json", frames, frames)


def jt808():
    frames = [bytes.fromhex(c["input"]) for c in cases("jt808.json")]
    good = [bytes.fromhex(c["input"]) for c in cases("jt808.json") if "expect" in c]
    split = [[bytes.fromhex(h) for h in c["input"]] for c in cases("jt808_split.json")]
    for seq in split:
        frames.extend(seq)
        good.extend(seq)
        for limits in [0x00, 0xFF, 0x5A]:
            write("jt808_reassemble", bytes([limits]) + b"".join(seq))
    write("jt808_reassemble", bytes([0xFF]) + b"".join(good))
    seed_frames("jt808", frames, good)
    for c in cases("jt808_body.json"):
        i = c["input"]
        v = 0 if i["version"] == "v2013" else 1
        sel = BODY_IDS.index(i["msg_id"]) << 1 | v if i["msg_id"] in BODY_IDS else 16 | v
        write("jt808_body", bytes([sel]) + bytes.fromhex(i["hex"]))


def bms(name):
    frames = [bytes.fromhex(c["input"]) for c in cases(name + ".json")]
    good = [bytes.fromhex(c["input"]) for c in cases(name + ".json") if "expect" in c]
    seed_frames(name, frames, good)


if __name__ == "__main__":
    csp()
    vendor_json()
    jt808()
    bms("jbd")
    bms("daly")
