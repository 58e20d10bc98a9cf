"""The official MCP Python SDK (`mcp`, pinned in scripts/mcp.sh) against a running Switchboard.

    python mcp_python_sdk.py <base url> <channel-bound api key> <date YYYY-MM-DD> <auto|legacy>

Connects to <base url>/mcp/twilio over Streamable HTTP as an MCP client does: `auto` is the
SDK's default connect (a `server/discover` probe, then protocol 2026-07-28's per-request
envelope), `legacy` the `initialize` handshake (2025-11-25). Lists the twilio agent's tools,
finds a patient, books an appointment on <date> at 10:00, and books it again: the second
call must be a tool result with isError and the conflict message. Prints one JSON line per
step; exits non-zero, saying which check failed, otherwise.
"""
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

# Tools the demo twilio agent has from each of its three plugins.
EXPECTED_TOOLS = {"SearchPatients", "CreateAppointment", "GetAvailableSlots", "CreateTicket", "CreateLead"}


def check(ok, what):
    if not ok:
        raise SystemExit(f"FAILED: {what}")


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


EXPECTED_VERSION = {"auto": "2026-07-28", "legacy": "2025-11-25"}


async def main(base, key, day, mode):
    url = f"{base}/mcp/twilio"
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        version = client.protocol_version
        info = client.server_info
        print(json.dumps({"step": "connect", "mode": mode, "protocolVersion": version,
                          "server": info.name if info else None}))
        check(version == EXPECTED_VERSION[mode], f"negotiated protocol version {version!r}, wanted {EXPECTED_VERSION[mode]}")
        check("Bright Smile Dental" in (client.instructions or ""), "initialize carries the agent's instructions")

        listed = await client.list_tools()
        names = {t.name for t in listed.tools}
        print(json.dumps({"step": "tools/list", "tools": len(names)}))
        check(EXPECTED_TOOLS <= names, f"tools/list lacks {sorted(EXPECTED_TOOLS - names)}")
        create = next(t for t in listed.tools if t.name == "CreateAppointment")
        check(create.input_schema.get("required"), "CreateAppointment's input schema names its required parameters")

        found = await client.call_tool("SearchPatients", {"name": "Rivera"})
        check(not found.is_error, f"SearchPatients succeeds: {text_of(found)}")
        print(json.dumps({"step": "SearchPatients", "result": found.structured_content}))
        check("Rivera" in json.dumps(found.structured_content), "SearchPatients finds the demo's Riveras")

        booking = {"PatNum": 1, "ProvNum": 1, "AptDateTime": f"{day} 10:00"}
        first = await client.call_tool("CreateAppointment", booking)
        print(json.dumps({"step": "CreateAppointment", "isError": first.is_error, "text": text_of(first)}))
        check(not first.is_error, f"the first booking succeeds: {text_of(first)}")
        check((first.structured_content or {}).get("AptNum"), "the booking's structuredContent has its AptNum")

        again = await client.call_tool("CreateAppointment", booking)
        message = text_of(again)
        print(json.dumps({"step": "CreateAppointment again", "isError": again.is_error, "text": message}))
        check(again.is_error, "a double booking is a tool result with isError")
        check("already booked" in message or "conflict" in message.lower(), f"the conflict message reaches the model: {message!r}")
    print(json.dumps({"step": "done"}))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[4] not in EXPECTED_VERSION:
        raise SystemExit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
