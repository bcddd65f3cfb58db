"""Runs the test proxy (tests/harness/proxy.py, same arguments) with
TCP_NODELAY on the sockets it answers on.

The test proxy writes an answer's headers and body in two writes; with
Nagle's algorithm on, the body then waits for the client's delayed ACK of
the headers, about 40 ms on Linux, on every request of a kept-alive
connection. The tests do not mind; a benchmark would measure that stall
instead of the tools (boto3 reuses connections and suffers it: 48 ms per
ListAccessKeys instead of 3). Setting the socketserver's own switch leaves
every rule of the proxy as it is.
"""

import importlib.util
import sys
from pathlib import Path

PROXY = Path(__file__).resolve().parent.parent / "tests/harness/proxy.py"

spec = importlib.util.spec_from_file_location("proxy", PROXY)
proxy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(proxy)
proxy.Handler.disable_nagle_algorithm = True
sys.argv[0] = str(PROXY)
proxy.main()
