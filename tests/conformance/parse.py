#!/usr/bin/env python3
"""Parses CEF and LEEF messages with parsers that share no code with sls-syslog.

Reads one JSON string (a syslog MSG) per input line, prints one JSON object per line:
{"header": [...], "fields": {key: value}}.

CEF: pycef (PyPI) splits the header and the extension; its values are still escaped, so the
CEF standard's extension unescaping (\\\\, \\=, \\n, \\r) is applied here.
LEEF 2.0: parsed here from IBM's description: a pipe-delimited header ending in the
attribute delimiter (a character, or 0xHH / xHH), then key=value pairs separated by it.
"""
import json
import sys


def cef(msg):
    import pycef

    parsed = pycef.parse(msg)
    if parsed is None:
        raise ValueError("pycef could not parse: " + msg)
    header = [parsed["CEFVersion"], parsed["DeviceVendor"], parsed["DeviceProduct"],
              parsed["DeviceVersion"], parsed["DeviceEventClassID"], parsed["Name"],
              parsed["Severity"]]
    skip = {"CEFVersion", "DeviceVendor", "DeviceProduct", "DeviceVersion",
            "DeviceEventClassID", "Name", "DeviceName", "Severity", "DeviceSeverity"}
    fields = {k: unescape_cef(v) for k, v in parsed.items() if k not in skip}
    return {"header": header, "fields": fields}


def unescape_cef(v):
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\" and i + 1 < len(v):
            n = v[i + 1]
            out.append({"\\": "\\", "=": "=", "n": "\n", "r": "\r"}.get(n, "\\" + n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def leef(msg):
    if not msg.startswith("LEEF:"):
        raise ValueError("not LEEF: " + msg)
    parts = msg.split("|", 6)
    if len(parts) != 7 or parts[0] != "LEEF:2.0":
        raise ValueError("not a LEEF 2.0 header: " + msg)
    _, vendor, product, version, event_id, delim, attrs = parts
    if len(delim) > 1 and delim[0] in "0x":
        delim = chr(int(delim.lstrip("0").lstrip("x"), 16))
    fields = {}
    for pair in attrs.split(delim):
        key, _, value = pair.partition("=")
        fields[key] = value
    return {"header": [vendor, product, version, event_id, delim], "fields": fields}


def main():
    kind = sys.argv[1]
    for line in sys.stdin:
        msg = json.loads(line)
        print(json.dumps(cef(msg) if kind == "cef" else leef(msg)))


if __name__ == "__main__":
    main()
