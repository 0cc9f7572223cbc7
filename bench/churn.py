"""Connection churn for bench/stall.sh: RATE connections a second on
loopback, each accepted and closed with SO_LINGER 0 (a reset, so no
TIME_WAIT piles up and the table stays the same size while it churns).

    python3 bench/churn.py RATE

Prints `ready: port=P` once listening; runs until killed; every 10 s prints
the rate it really made on stderr.
"""
import socket, struct, sys, time

rate = int(sys.argv[1])
LINGER0 = struct.pack("ii", 1, 0)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(4096)
port = srv.getsockname()[1]
print(f"ready: port={port}", flush=True)
made, start, report = 0, time.monotonic(), time.monotonic() + 10
while True:
    # A batch per 10 ms keeps the rate even.
    due = start + made / rate
    now = time.monotonic()
    if due > now:
        time.sleep(min(due - now, 0.01))
        continue
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    c.connect(("127.0.0.1", port))
    a, _ = srv.accept()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    a.close()
    c.close()
    made += 1
    if now >= report:
        print(f"churn: {made / (now - start):.0f} connections/s", file=sys.stderr, flush=True)
        report = now + 10
