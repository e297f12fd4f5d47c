"""The `delistbot` command line: one module per command group, each with `register(subparsers)`.

Exit codes are part of the contract (scripts rely on them):
  0  success (for `due`: nothing is due)
  1  the command ran, and the answer is "something needs attention" (e.g. `due` found pings)
  2  usage or settings error
  3  the input is not a bounce (or not a provider reply, for `update`)
  4  the input could not be read (missing file, empty, binary)
  5  a ticket or other named thing does not exist, or a move is not allowed
"""

EXIT_OK = 0
EXIT_ATTENTION = 1
EXIT_USAGE = 2
EXIT_NOT_BOUNCE = 3
EXIT_UNREADABLE = 4
EXIT_REFUSED = 5
