#!/usr/bin/env python3
"""Runs Alibaba's reference Python function (the code block of
../shared/reference/alibaba-doc-fc-sls-to-siem-syslog.txt, read from that document at run time,
not copied) once over one shard range, the way FC would call it, and prints one JSON line with
its CPU seconds, peak RSS and wall time.

usage: reference.py DOC EVENT_JSON_FILE   (SYSLOG_HOST/PORT/PROTOCOL and ALIBABA_CLOUD_* in the
environment; needs `pip install aliyun-log-python-sdk pysyslogclient`)
"""
import contextlib
import io
import json
import os
import socket
import sys
import textwrap
import time
import types


def load_handler(doc_path):
    lines = open(doc_path, encoding="utf-8").read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "# !/usr/bin/env python")
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "return 'success'")
    source = textwrap.dedent("\n".join(lines[start:end + 1]))
    module = types.ModuleType("reference_index")
    exec(compile(source, doc_path, "exec"), module.__dict__)
    return module.handler


def resolve_project_hosts():
    """SLS serves `{project}.{endpoint}`; on this machine that name is the test server's
    loopback address, as DNS makes it in the cloud."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".127.0.0.1"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def main():
    resolve_project_hosts()
    doc, event_file = sys.argv[1], sys.argv[2]
    handler = load_handler(doc)
    event = open(event_file, "rb").read()
    creds = types.SimpleNamespace(
        access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        security_token=os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN"),
    )
    context = types.SimpleNamespace(credentials=creds, request_id="reference")
    cpu0, wall0 = time.process_time(), time.monotonic()
    # The handler prints its context (credentials included) and the event: keep that out.
    with contextlib.redirect_stdout(io.StringIO()):
        result = handler(event, context)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent.
    peak_kib = next(
        int(line.split()[1])
        for line in open("/proc/self/status")
        if line.startswith("VmHWM:")
    )
    print(json.dumps({"result": result, "cpu_s": cpu, "wall_s": wall, "peak_rss_kib": peak_kib}))


if __name__ == "__main__":
    main()
