"""The fixtures the integration suites share, in one place, so no suite
copies another's or imports another suite.

ARGS           .bin and .src of the run, filled by runner.main.
hssgw(*argv)   runs the built hssgw; (exit status, stdout, stderr) as text.
fp(secret)     the 16-hex fingerprint of a secret, as hssgw's audit and
               the emulator's revoke write it.
TASK_POLICY    the policy letting hss-exporters read and download tasks.
TASK_BODY      the export the task suites send (private_image, all hosts).
TaskStack      a stack.Stack plus a handle key, TASK_POLICY and a "tasks"
               config section.
check_bytes    whether data is the emulator's export file at an offset.
max_in_window  the most timestamps within any window (the budget's test).

Python 3 stdlib only.  Nothing here prints a secret.
"""

import argparse
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import time

import stack as stk

ARGS = argparse.Namespace(bin=None, src=None)

TASK_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "AllowTasksDemo", "Effect": "Allow",
        "Principal": {"jwt:groups": stk.ALLOWED_GROUP},
        "Action": ["hss:GetExportTask", "hss:DownloadExportFile"],
        "Resource": "hss:*:%s" % stk.PROJECT_ALIAS}],
}
TASK_BODY = {"project": stk.PROJECT_ALIAS, "image_type": "private_image",
             "operate_all": True}


def hssgw(*argv, stdin=b"", timeout=60):
    """Runs ARGS.bin/hssgw with argv and stdin (bytes; empty by default);
    returns (exit status, stdout, stderr), the streams decoded as UTF-8.
    The timeout only guards against a hang."""
    p = subprocess.run([os.path.join(ARGS.bin, "hssgw")] + list(argv),
                       input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def fp(secret):
    """The 16-hex fingerprint hssgw's audit and the emulator's revoke use."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class TaskStack(stk.Stack):
    """The shared stack plus a handle key, a task policy and tasks keys."""

    def __init__(self, *a, tasks=None, key_file=True, policies=(), **kw):
        super().__init__(*a, **kw)
        self.tasks = tasks or {}
        self.key_file = key_file
        self.extra_policies = policies  # files under policies/examples/

    def _configs(self):
        super()._configs()
        stk.write_file(self.path("secrets", "task.key"),
                       os.urandom(32).hex(), 0o600)
        stk.write_file(self.path("policies", "tasks.json"),
                       json.dumps(TASK_POLICY))
        for name in self.extra_policies:
            with open(os.path.join(self.srcdir, "policies", "examples",
                                   name)) as f:
                stk.write_file(self.path("policies", name), f.read())
        t = {"handle_key_file": "secrets/task.key"} if self.key_file else {}
        t.update(self.tasks)
        self.config["tasks"] = t
        stk.write_file(self.config_path, json.dumps(self.config, indent=1))

    def get(self, path, token):
        h = {"Authorization": "Bearer " + token} if token else {}
        return self.request("GET", path, None, h)

    def sighup_and_wait(self):
        marker = "reloaded"
        n = self.log_tail("hssgw", 1 << 20).count(marker)
        self.procs["hssgw"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.log_tail("hssgw", 1 << 20).count(marker) == n:
            assert time.monotonic() < deadline, "no reload"
            time.sleep(0.02)

    def tasks_ctl(self, doc=None):
        if doc is None:
            r = self.request("GET", "/_emulator/tasks", port=self.emu_port)
        else:
            r = self.emulator_control("tasks", doc)
        assert r.status == 200, r
        return r.json()


def check_bytes(data, file_id, start=0):
    """Every byte as the emulator generates it (emu_tasks.c emu_task_new);
    data begins at file offset start, a multiple of 4096."""
    seed = sum(file_id.encode()) % 256
    base = bytes((seed + k) % 256 for k in range(4096 + 251))
    for off in range(0, len(data), 4096):
        i = (start + off) // 4096
        want = i.to_bytes(8, "big") + base[i % 251 + 8:i % 251 + 4096]
        got = data[off:off + 4096]
        if got != want[:len(got)]:
            return False
    return True


def max_in_window(times_ms, window_ms=60000):
    """The most of times_ms (any order) within any window_ms."""
    t = sorted(times_ms)
    best, j = 0, 0
    for i in range(len(t)):
        while t[i] - t[j] >= window_ms:
            j += 1
        best = max(best, i - j + 1)
    return best


# -- a minimal FastCGI client (FastCGI 1.0), to talk to hssgw directly --
def record(rtype, content, rid=1):
    return struct.pack(">BBHHBB", 1, rtype, rid, len(content), 0, 0) + content


def nv(name, value):
    n, v = name.encode(), value.encode()

    def ln(x):
        return bytes([len(x)]) if len(x) < 128 else struct.pack(
            ">I", len(x) | 0x80000000)
    return ln(n) + ln(v) + n + v


def fcgi_request(params, body=b"", keep=False, rid=1):
    """The bytes nginx would send for one request; keep: FCGI_KEEP_CONN,
    as nginx's fastcgi_keep_conn on sets it."""
    out = record(1, struct.pack(">HB5x", 1, 1 if keep else 0), rid)
    p = b"".join(nv(k, v) for k, v in params.items())
    out += record(4, p, rid) + record(4, b"", rid)
    if body:
        out += record(5, body, rid)
    return out + record(5, b"", rid)


def fcgi_read(sock, limit=None):
    """STDOUT bytes and whether END_REQUEST came; stops at limit bytes."""
    buf, out, ended = b"", b"", False
    while not ended:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            _, rtype, _, clen, pad, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + clen + pad:
                break
            if rtype == 6:
                out += buf[8:8 + clen]
            elif rtype == 3:
                ended = True
            buf = buf[8 + clen + pad:]
        if limit is not None and len(out) >= limit:
            break
    return out, ended


def health_params():
    return {"REQUEST_METHOD": "GET", "DOCUMENT_URI": "/healthz",
            "HSSGW_CLIENT_ADDR": "127.0.0.1", "HSSGW_REQUEST_ID": "direct"}
