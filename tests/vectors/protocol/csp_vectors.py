#!/usr/bin/env python3
"""Builds tests/vectors/protocol/csp.json independently of the Rust codec.

Every frame is assembled here from the byte layout of docs/protocol/csp.md:
the header with struct.pack, the payload with this file's own postcard
encoder (LEB128 varints, zigzag for signed integers, raw u8/i8, 0/1 option
and bool tags, enum variant index as varint, length-prefixed strings and
sequences), the CRC with binascii.crc32 (CRC-32/ISO-HDLC) and the MAC with
hmac + hashlib (HMAC-SHA-256, leftmost 16 bytes). The expected JSON is the
value each payload was built from, written out by hand below, never the
codec's output.

Run: python3 tests/vectors/protocol/csp_vectors.py > tests/vectors/protocol/csp.json
"""

import binascii
import hashlib
import hmac
import json
import struct

KEY = bytes(range(32))  # 000102...1f, the fixed test key
KEY_HEX = KEY.hex()
OTHER_KEY = bytes([0xFF] * 32)

DEV = 20001

# ---- postcard, by the spec (https://postcard.jamesmunns.com/wire-format) ----


def varint(n):
    assert n >= 0
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return varint((n << 1) if n >= 0 else ((-n) << 1) - 1)


def u8(n):
    return bytes([n])


def i8(n):
    return struct.pack("b", n)


def s(text):
    b = text.encode()
    return varint(len(b)) + b


def none():
    return b"\x00"


def some(b):
    return b"\x01" + b


def seq(items):
    return varint(len(items)) + b"".join(items)


# enum indices (declaration order, docs/protocol/csp.md)
SLOT = {"empty": 0, "charging": 1, "full": 2, "fault": 3, "locked": 4}
DOOR_FAIL = {"lock_fault": 0, "jammed": 1, "slot_disabled": 2, "busy": 3, "timeout": 4}
ALARM = {"smoke": 0, "over_temperature": 1, "water": 2, "tamper": 3, "power_loss": 4}
ALARM_STATE = {"raised": 0, "cleared": 1}
OUTCOME = {"completed": 0, "return_timeout": 1, "wrong_battery": 2, "door_failed": 3,
           "cancelled": 4, "expired": 5}
REASON = {"swap_return": 0, "swap_issue": 1, "rental": 2, "rental_return": 3, "maintenance": 4}
RESULT = {"ok": 0, "unknown_command": 1, "bad_payload": 2, "auth_failed": 3, "replayed": 4,
          "invalid_slot": 5, "slot_busy": 6, "device_busy": 7, "unknown_order": 8,
          "order_expired": 9, "not_logged_in": 10, "unsupported_version": 11,
          "hardware_fault": 12, "duplicate": 13, "internal_error": 14}
TIER = {"sharp": 0, "peak": 1, "flat": 2, "valley": 3}

# ---- frame ---------------------------------------------------------------------


def frame(cmd, payload, seq_no, device=DEV, mac_key=None, ack=False, version=1,
          flags_extra=0, mac_bytes=None, length=None):
    flags = (0x01 if (mac_key is not None or mac_bytes is not None) else 0) | (0x02 if ack else 0) | flags_extra
    n = len(payload) if length is None else length
    header = b"CS" + struct.pack(">BHIIBB", version, n, device, seq_no, cmd, flags)
    body = header + payload
    if mac_key is not None:
        body += hmac.new(mac_key, body, hashlib.sha256).digest()[:16]
    elif mac_bytes is not None:
        body += mac_bytes
    return body + struct.pack(">I", binascii.crc32(body))


def fix_crc(b):
    return b[:-4] + struct.pack(">I", binascii.crc32(b[:-4]))


def mac_of(b):
    """The MAC field of a sealed frame, as hex (for the expected JSON)."""
    return b[-20:-4].hex()


cases = []


def ok(name, note, hexframe, message, seq_no, mac_status, key=None, ack=False, device=DEV):
    inp = {"hex": hexframe.hex().upper()}
    if key is not None:
        inp["key"] = key
    has_mac = mac_status != "absent"
    cases.append({
        "name": name,
        "note": note,
        "input": inp,
        "expect": {
            "frame": {"device_no": device, "seq": seq_no, "ack_requested": ack,
                      "message": message, "mac": mac_of(hexframe) if has_mac else None},
            "mac_status": mac_status,
        },
    })


def err(name, note, hexframe, error):
    cases.append({"name": name, "note": note, "input": {"hex": hexframe.hex().upper()},
                  "expect_error": error})


# 0x01 login
p = s("1.4.2") + s("CS-12") + u8(12)
ok("login", "payload 05 '1.4.2' 05 'CS-12' 0C; seq 1; no MAC", frame(0x01, p, 1),
   {"type": "login", "firmware": "1.4.2", "model": "CS-12", "slot_count": 12}, 1, "absent")

# 0x02 heartbeat, sealed although optional
p = varint(3600) + some(i8(-71))
ok("heartbeat-sealed", "uptime 3600 = varint 90 1C; rssi Some(-71) = 01 B9 (i8 raw); sealed "
   "with the test key although heartbeats need no MAC: valid",
   frame(0x02, p, 2, mac_key=KEY), {"type": "heartbeat", "uptime_s": 3600, "rssi_dbm": -71},
   2, "valid", key=KEY_HEX)

# 0x03 cabinet status
p = seq([
    u8(1) + varint(SLOT["empty"]) + none(),
    u8(2) + varint(SLOT["charging"]) + some(varint(200001) + u8(64) + varint(52100) + zigzag(291)),
    u8(3) + varint(SLOT["locked"]) + none(),
])
ok("cabinet-status", "3 slots: 01 00 00 | 02 01 01 [200001 = C1 9A 0C][40][52100 = 84 97 03]"
   "[291 zigzag 582 = C6 04] | 03 04 00",
   frame(0x03, p, 3),
   {"type": "cabinet_status", "slots": [
       {"slot": 1, "state": "empty", "battery": None},
       {"slot": 2, "state": "charging", "battery": {"battery": 200001, "soc_pct": 64,
                                                     "voltage_mv": 52100, "temp_dc": 291}},
       {"slot": 3, "state": "locked", "battery": None}]},
   3, "absent")

# 0x04 door opened
ok("door-opened", "slot 03, command_seq Some(100) = 01 64",
   frame(0x04, u8(3) + some(varint(100)), 4),
   {"type": "door_opened", "slot": 3, "command_seq": 100}, 4, "absent")

# 0x05 door closed (same bytes as the Rust unit test door_closed_bytes_by_hand)
ok("door-closed", "4353 01 0001 00004E21 00000007 05 00 | 03 | CRC-32 of the 16 bytes",
   frame(0x05, u8(3), 7), {"type": "door_closed", "slot": 3}, 7, "absent")

# 0x06 door failed
ok("door-failed", "slot 04, jammed = index 1, command_seq None",
   frame(0x06, u8(4) + varint(DOOR_FAIL["jammed"]) + none(), 8),
   {"type": "door_failed", "slot": 4, "reason": "jammed", "command_seq": None}, 8, "absent")

# 0x07 battery inserted with BMS
bms = {"soc_pct": 87, "soh_pct": 96, "pack_mv": 54320, "current_ma": -1500, "temp_dc": 253,
       "cycles": 312, "cell_min_mv": 3390, "cell_max_mv": 3402, "protection": 0}
pbms = (u8(87) + u8(96) + varint(54320) + zigzag(-1500) + zigzag(253) + varint(312)
        + varint(3390) + varint(3402) + varint(0))
ok("battery-inserted", "slot 3, battery 200001, BMS: soc 57h, soh 60h, 54320 mV varint, "
   "-1500 mA zigzag 2999, 25.3 °C zigzag 506, 312 cycles, cells 3390/3402 mV, flags 0",
   frame(0x07, u8(3) + varint(200001) + some(pbms), 9),
   {"type": "battery_inserted", "slot": 3, "battery": 200001, "bms": bms}, 9, "absent")

# 0x08 battery removed without BMS
ok("battery-removed", "slot 5, battery 4999999 (the top of the battery range), bms None",
   frame(0x08, u8(5) + varint(4999999) + none(), 10),
   {"type": "battery_removed", "slot": 5, "battery": 4999999, "bms": None}, 10, "absent")

# 0x09 swap result (MAC required)
p = varint(900000001) + varint(OUTCOME["completed"]) + some(varint(200001)) + some(varint(200002))
ok("swap-result", "order 900000001, completed, returned 200001, issued 200002; MAC over the "
   "15-byte header (flags 01) and payload",
   frame(0x09, p, 11, mac_key=KEY),
   {"type": "swap_result", "order_id": 900000001, "outcome": "completed",
    "returned_battery": 200001, "issued_battery": 200002}, 11, "valid", key=KEY_HEX)

# 0x0A alarm
p = varint(ALARM["over_temperature"]) + varint(ALARM_STATE["raised"]) + some(u8(6)) + some(zigzag(655))
ok("alarm", "over_temperature (1) raised (0) slot Some(6) reading Some(65.5 °C = 655, zigzag 1310 = 9E 0A)",
   frame(0x0A, p, 12),
   {"type": "alarm", "alarm": "over_temperature", "state": "raised", "slot": 6, "reading": 655},
   12, "absent")

# 0x0B time sync request
ok("time-sync-request", "device_time 1735689600 (2025-01-01T00:00:00Z) varint",
   frame(0x0B, varint(1735689600), 13),
   {"type": "time_sync_request", "device_time": 1735689600}, 13, "absent")

# 0x40 ack
ok("ack", "ack_seq 7, result ok (0); the frame asks for no ack",
   frame(0x40, varint(7) + varint(RESULT["ok"]), 14),
   {"type": "ack", "ack_seq": 7, "result": "ok"}, 14, "absent")

# 0x81 open door (MAC required), ack requested
open_payload = u8(3) + varint(REASON["swap_issue"]) + some(varint(900000001))
open_frame = frame(0x81, open_payload, 100, mac_key=KEY, ack=True)
open_msg = {"type": "open_door", "slot": 3, "reason": "swap_issue", "order_id": 900000001}
ok("open-door", "platform seq 100, flags 03 (MAC + ack requested); slot 3, swap_issue (1), order Some(900000001)",
   open_frame, open_msg, 100, "valid", key=KEY_HEX, ack=True)
ok("open-door-no-key", "the same frame decoded without a key: the MAC is present but unverified",
   open_frame, open_msg, 100, "present-unverified", ack=True)
ok("open-door-wrong-key", "the same frame checked with key ff×32: invalid",
   open_frame, open_msg, 100, "invalid", key=OTHER_KEY.hex(), ack=True)
tampered = bytearray(open_frame)
tampered[15] = 4  # slot 3 -> 4
tampered = fix_crc(bytes(tampered))
ok("open-door-tampered", "slot byte (offset 15) changed 03 -> 04 and the CRC recomputed: the MAC "
   "no longer matches", tampered, dict(open_msg, slot=4), 100, "invalid", key=KEY_HEX, ack=True)

# 0x82 swap order (MAC)
p = (varint(900000001) + u8(2) + u8(7) + varint(200002) + some(varint(200001)) + varint(1735689660))
ok("swap-order", "order 900000001: return slot 2, issue slot 7 battery 200002, expect 200001 back, "
   "expires 1735689660",
   frame(0x82, p, 101, mac_key=KEY, ack=True),
   {"type": "swap_order", "order_id": 900000001, "return_slot": 2, "issue_slot": 7,
    "issue_battery": 200002, "expected_return": 200001, "expires_at": 1735689660},
   101, "valid", key=KEY_HEX, ack=True)

# 0x83 time sync
ok("time-sync", "unix_ms 1735689600123 varint, utc_offset 480 zigzag 960 = C0 07",
   frame(0x83, varint(1735689600123) + zigzag(480), 102),
   {"type": "time_sync", "unix_ms": 1735689600123, "utc_offset_min": 480}, 102, "absent")

# 0x84 tariff push (MAC)
p = (varint(7) + s("CNY") + varint(350000)
     + seq([varint(TIER["peak"]) + varint(110000) + varint(40000),
            varint(TIER["valley"]) + varint(35000) + varint(40000)])
     + seq([varint(0) + varint(TIER["valley"]), varint(480) + varint(TIER["peak"]),
            varint(1320) + varint(TIER["valley"])])
     + varint(1735689600))
ok("tariff-push", "tariff 7 CNY; swap fee 350000 ×1e-5 = ¥3.50; peak 1.10 + 0.40 /kWh, valley "
   "0.35 + 0.40 /kWh; valley 00:00, peak 08:00, valley 22:00; from 2025-01-01",
   frame(0x84, p, 103, mac_key=KEY, ack=True),
   {"type": "tariff_push", "tariff_id": 7, "currency": "CNY", "swap_fee": 350000,
    "tiers": [{"tier": "peak", "energy_per_kwh": 110000, "service_per_kwh": 40000},
              {"tier": "valley", "energy_per_kwh": 35000, "service_per_kwh": 40000}],
    "periods": [{"start_minute": 0, "tier": "valley"}, {"start_minute": 480, "tier": "peak"},
                {"start_minute": 1320, "tier": "valley"}],
    "effective_from": 1735689600},
   103, "valid", key=KEY_HEX, ack=True)

# 0x85 config push (MAC)
p = varint(60) + varint(300) + varint(30) + zigzag(600) + varint(5000) + seq([u8(9)])
ok("config-push", "heartbeat 60 s, status 300 s, door timeout 30 s, over-temperature 60.0 °C "
   "(zigzag 1200), 5000 mA, slot 9 disabled",
   frame(0x85, p, 104, mac_key=KEY, ack=True),
   {"type": "config_push", "heartbeat_interval_s": 60, "status_interval_s": 300,
    "door_open_timeout_s": 30, "over_temperature_dc": 600, "max_charge_current_ma": 5000,
    "disabled_slots": [9]},
   104, "valid", key=KEY_HEX, ack=True)

# 0x86 query status
ok("query-status", "empty payload (length 0000), ack requested",
   frame(0x86, b"", 105, ack=True), {"type": "query_status"}, 105, "absent", ack=True)

# ---- errors -------------------------------------------------------------------

door = frame(0x05, u8(3), 7)
crc_ok = struct.unpack(">I", door[-4:])[0]
bad = door[:-1] + bytes([door[-1] ^ 0xFF])
err("bad-crc", "last CRC byte flipped; the CRC field is at byte 16 (15 header + 1 payload)",
    bad, {"kind": "bad_crc", "offset": 16, "found": struct.unpack(">I", bad[-4:])[0],
          "computed": crc_ok})
err("bad-magic", "first byte 44 instead of 43", b"\x44" + door[1:],
    {"kind": "bad_magic", "offset": 0, "found": 0x44, "expected": 0x43})
err("bad-version", "version 02 at byte 2", frame(0x05, u8(3), 7, version=2),
    {"kind": "unsupported_version", "offset": 2, "found": 2, "supported": 1})
err("payload-too-long", "length 1001h = 4097 > 4096 at byte 3 (the rest need not be present)",
    b"CS\x01\x10\x01", {"kind": "payload_too_long", "offset": 3, "length": 4097, "max": 4096})
err("battery-as-device", "header device number 200001 is a battery's, not a DTU's",
    frame(0x05, u8(3), 7, device=200001), {"kind": "bad_device_no", "offset": 5, "number": 200001})
err("below-plan-device", "header device number 20000 is below the plan",
    frame(0x05, u8(3), 7, device=20000), {"kind": "bad_device_no", "offset": 5, "number": 20000})
err("unknown-command", "command 0C is not defined", frame(0x0C, b"", 7),
    {"kind": "unknown_command", "offset": 13, "code": 12})
err("reserved-flags", "flag bit 7 set", frame(0x05, u8(3), 7, flags_extra=0x80),
    {"kind": "reserved_flags", "offset": 14, "flags": 0x80})
err("open-door-without-mac", "open_door with flags 00: rejected before the payload is read",
    frame(0x81, open_payload, 100), {"kind": "mac_required", "offset": 14, "command": "open_door"})
err("non-canonical-varint", "heartbeat uptime 5 written 85 00 (two bytes) instead of 05",
    frame(0x02, b"\x85\x00" + none(), 2), {"kind": "non_canonical", "offset": 15, "command": "heartbeat"})
err("trailing-payload", "door_closed payload 03 00: one byte too many at byte 16",
    frame(0x05, b"\x03\x00", 7), {"kind": "trailing_payload", "offset": 16, "extra": 1})
err("slot-zero", "door_closed slot 00: slots count from 1",
    frame(0x05, u8(0), 7), {"kind": "invalid_field", "offset": 15, "field": "slot"})
err("enum-out-of-range", "door_failed reason index 9 (only 0-4 exist)",
    frame(0x06, u8(4) + varint(9) + none(), 8), {"kind": "bad_payload", "offset": 15, "command": "door_failed"})
err("truncated", "door_closed cut after 17 of 20 bytes", door[:17],
    {"kind": "truncated", "needed": 20, "available": 17})
err("trailing-bytes", "one byte after a complete frame", door + b"\x00",
    {"kind": "trailing_bytes", "offset": 20, "extra": 1})

decode_file = {
    "kind": "csp.decode",
    "note": ("Built by tests/vectors/protocol/csp_vectors.py: frames assembled from the byte layout "
             "of docs/protocol/csp.md with the script's own postcard encoder, CRC-32/ISO-HDLC from "
             "binascii.crc32 and HMAC-SHA-256 (leftmost 16 bytes) from Python's hmac/hashlib, key "
             "000102...1f. The expected frame is the value each payload was built from. The evaluator "
             "also checks that re-encoding the decoded frame gives the input bytes."),
    "cases": cases,
}

# ---- authentication sequences ---------------------------------------------------


def sealed_open(seq_no, key=KEY):
    return frame(0x81, open_payload, seq_no, mac_key=key, ack=True).hex().upper()


auth_cases = [
    {"name": "replay", "note": "the same sealed open_door twice: acted on once, then rejected",
     "input": {"key": KEY_HEX, "frames": [sealed_open(100), sealed_open(100)]},
     "expect": ["authenticated", "replayed"]},
    {"name": "window", "note": "200 accepted; 136 = 200-64 is outside the 64-wide window; 137 "
     "is inside and new; 137 again is a replay; 201 moves the window",
     "input": {"key": KEY_HEX, "frames": [sealed_open(200), sealed_open(136), sealed_open(137),
                                          sealed_open(137), sealed_open(201)]},
     "expect": ["authenticated", "too_old", "authenticated", "replayed", "authenticated"]},
    {"name": "reordered", "note": "10, 8, 9 all fresh (late but inside the window), then 8 again",
     "input": {"key": KEY_HEX, "frames": [sealed_open(10), sealed_open(8), sealed_open(9), sealed_open(8)]},
     "expect": ["authenticated", "authenticated", "authenticated", "replayed"]},
    {"name": "forged", "note": "sealed with key ff×32; the window is untouched, so the genuine "
     "frame with the same seq is accepted afterwards",
     "input": {"key": KEY_HEX, "frames": [sealed_open(5, OTHER_KEY), sealed_open(5)]},
     "expect": ["bad_mac", "authenticated"]},
    {"name": "tampered", "note": "slot byte changed and CRC fixed: bad MAC, then the original is fine",
     "input": {"key": KEY_HEX, "frames": [tampered.hex().upper(), open_frame.hex().upper()]},
     "expect": ["bad_mac", "authenticated"]},
    {"name": "unsealed", "note": "an alarm without MAC is unauthenticated and does not enter the "
     "window; an open_door without MAC does not even decode",
     "input": {"key": KEY_HEX, "frames": [frame(0x0A, varint(0) + varint(0) + none() + none(), 3).hex().upper(),
                                          frame(0x81, open_payload, 3).hex().upper()]},
     "expect": ["unauthenticated", "mac_required"]},
]

auth_file = {
    "kind": "csp.authenticate",
    "note": ("Frames built by tests/vectors/protocol/csp_vectors.py (see csp.json) and fed in order "
             "through one replay window (64 wide) with the given key; each result is "
             "'authenticated', 'unauthenticated' or the error kind. Expectations follow RFC 4303 "
             "§3.4.3: a seq is rejected if it is 64 or more below the highest accepted, or seen."),
    "cases": auth_cases,
}

if __name__ == "__main__":
    import sys
    which = sys.argv[1] if len(sys.argv) > 1 else "decode"
    print(json.dumps(decode_file if which == "decode" else auth_file, indent=1, ensure_ascii=False))
