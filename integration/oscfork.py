# oscfork.py serves the integration tests' `openstack` commands: the real
# python-openstackclient, its main() run exactly as /usr/bin/openstack runs
# it, in a process forked from one interpreter that has imported the CLI
# and its plugins once. A fresh interpreter spends ~1.3 CPU-seconds on
# imports before each command does anything; the suite runs hundreds of
# them on a two-core machine beside QEMU guests.
#
# Protocol, one command per connection to the Unix socket in argv[1]: the
# client sends one JSON line {"argv": [...], "env": ["K=V", ...], "dir":
# "..."}; the server answers "pid N\n" (the process running the command,
# for the client to kill at its timeout), then the command's stdout and
# stderr as they come, then TRAILER and the exit status, and closes.
import importlib.metadata
import json
import os
import random
import signal
import socket
import sys
import traceback

# cliff names the program after sys.argv[0] when it is imported.
sys.argv[0] = "/usr/bin/openstack"
from openstackclient import shell  # noqa: E402

TRAILER = b"\n\x00oscfork-exit "


def preload():
    # Import every module the CLI's commands and auth plugins live in, so
    # that forked commands find them imported.
    for group in importlib.metadata.entry_points().groups:
        if group.startswith("openstack.") or group.startswith("keystoneauth1."):
            for ep in importlib.metadata.entry_points(group=group):
                try:
                    ep.load()
                except Exception:
                    pass


def run(conn):
    f = conn.makefile("rb")
    req = json.loads(f.readline())
    conn.sendall(b"pid %d\n" % os.getpid())
    os.environ.clear()
    for kv in req["env"]:
        k, _, v = kv.partition("=")
        os.environ[k] = v
    os.chdir(req.get("dir") or "/")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(conn.fileno(), 1)
    os.dup2(conn.fileno(), 2)
    random.seed()
    sys.argv = ["openstack"] + req["argv"]
    try:
        code = shell.main(req["argv"])
    except SystemExit as e:
        code = e.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, TRAILER + b"%d\n" % code)


def main():
    preload()
    path = sys.argv[1]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(64)
    # Forked commands are reaped by the kernel.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        pid = os.fork()
        if pid == 0:
            srv.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                run(conn)
            except BaseException:
                code = 1
            os._exit(code)
        conn.close()


if __name__ == "__main__":
    main()
