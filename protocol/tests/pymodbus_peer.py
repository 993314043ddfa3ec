"""A real Modbus peer for protocol/tests/pymodbus_interop.rs, using pymodbus.

Modes (all on 127.0.0.1, each ends by itself within LIMIT seconds):
  client-tcp PORT   pymodbus Modbus TCP client against our tokio-modbus server
  client-rtu PORT   pymodbus RTU-over-TCP client against our RTU slave
  server-tcp PORT   pymodbus Modbus TCP server with a slot board's registers
  dtu PLATFORM RTU  a DTU in transparent mode: pymodbus RTU-over-TCP server on
                    port RTU as the RS-485 slot board, bridged to the platform
                    at port PLATFORM after the registration packet REG:20009\\r\\n
Clients print one JSON line with what they read and exit 0 when every check
passed.
"""

import asyncio
import json
import signal
import socket
import sys

from pymodbus.client import ModbusTcpClient
from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusServerContext,
    ModbusSparseDataBlock,
)
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

LIMIT = 30
HOST = "127.0.0.1"

# Registers of one slot board (docs/protocol/modbus-map.md), protocol addresses.
SLOT_STATUS = [0, 0, 1, 1, 1, 5460, 250]  # closed, locked, occupied, present, charging, 54.60 V, 2.50 A
BMS = [3, 3393, 5312, 64286, 87, 96, 312, 2, 2, 256] + [0] * 6 + [3321, 3318] + [0] * 22 + [253, 65486] + [0] * 6
CONTROL = [1, 0]
BATTERY_NO = [3, 3393]


def block(*parts):
    """A sparse block from (protocol address, values) pairs; pymodbus adds 1."""
    values = {}
    for base, regs in parts:
        for i, v in enumerate(regs):
            values[base + i + 1] = v
    return ModbusSparseDataBlock(values)


def context():
    dev = ModbusDeviceContext(
        ir=block((0x0000, SLOT_STATUS), (0x1000, BMS)),
        hr=block((0x0100, CONTROL), (0x1100, BATTERY_NO)),
    )
    return ModbusServerContext(devices={1: dev}, single=False)


def check(cond, what):
    if not cond:
        print(json.dumps({"failed": what}))
        sys.exit(1)


def client(port, framer):
    c = ModbusTcpClient(HOST, port=port, framer=framer, timeout=3, retries=1)
    check(c.connect(), "connect")
    out = {}
    unit = 2
    r = c.read_input_registers(0, count=7, device_id=unit)
    check(not r.isError(), f"read slot status: {r}")
    out["slot_status"] = r.registers
    r = c.read_input_registers(0x1000, count=48, device_id=unit)
    check(not r.isError(), f"read bms: {r}")
    out["bms"] = r.registers
    r = c.write_register(0x0101, 1, device_id=unit)
    check(not r.isError(), f"open door: {r}")
    r = c.read_input_registers(0, count=2, device_id=unit)
    check(not r.isError() and r.registers == [1, 1], f"door open after command: {r}")
    r = c.write_registers(0x1100, [0x0004, 0x93E0], device_id=unit)
    check(not r.isError(), f"write battery number: {r}")
    r = c.read_holding_registers(0x1100, count=2, device_id=unit)
    check(not r.isError() and r.registers == [0x0004, 0x93E0], f"battery number read back: {r}")
    r = c.read_input_registers(0x2000, count=1, device_id=unit)
    check(r.isError() and r.exception_code == 2, f"illegal address gives exception 2: {r}")
    r = c.write_register(0x0100, 7, device_id=unit)
    check(r.isError() and r.exception_code == 3, f"illegal value gives exception 3: {r}")
    out["ok"] = True
    c.close()
    print(json.dumps(out))


async def server(port, framer):
    s = ModbusTcpServer(context(), framer=framer, address=(HOST, port))
    try:
        await asyncio.wait_for(s.serve_forever(), timeout=LIMIT)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        pass
    finally:
        await s.shutdown()


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(512)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def dtu(platform_port, rtu_port):
    """The DTU: the slot board is pymodbus's RTU server; bytes pass unchanged."""
    srv = asyncio.create_task(server(rtu_port, FramerType.RTU))
    for _ in range(100):  # wait for the slot board to listen
        try:
            bus_r, bus_w = await asyncio.open_connection(HOST, rtu_port)
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        check(False, "slot board did not start")
    plat_r, plat_w = await asyncio.open_connection(HOST, platform_port)
    plat_w.write(b"REG:20009\r\n")
    await plat_w.drain()
    try:
        await asyncio.wait_for(
            asyncio.gather(pipe(plat_r, bus_w), pipe(bus_r, plat_w)), timeout=LIMIT
        )
    except asyncio.TimeoutError:
        pass
    srv.cancel()


def main():
    signal.alarm(LIMIT + 5)  # a hard stop whatever happens
    mode = sys.argv[1]
    if mode == "client-tcp":
        client(int(sys.argv[2]), FramerType.SOCKET)
    elif mode == "client-rtu":
        client(int(sys.argv[2]), FramerType.RTU)
    elif mode == "server-tcp":
        asyncio.run(server(int(sys.argv[2]), FramerType.SOCKET))
    elif mode == "dtu":
        asyncio.run(dtu(int(sys.argv[2]), int(sys.argv[3])))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
