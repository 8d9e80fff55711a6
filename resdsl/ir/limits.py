"""Resource guards: a spec past these is refused, with a located error, before it is built."""

MAX_OPS = 200_000  # ops in one network
MAX_CALL_DEPTH = 50  # blocks calling blocks; lowering recurses once per level
