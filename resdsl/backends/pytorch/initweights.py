"""The `__init__` lines that initialise a generated network's weights."""

from __future__ import annotations


def init_weights_lines(last_bns: dict[str, list[tuple[str, str | None]]]) -> list[str]:
    """The network's weight initialisation: He for convolutions, BN at 1 and 0, and with
    `zero_init_residual` the last BN of each residual branch (BodyWriter.last_bns: a class -> its
    (BN, guard) pairs; a guard says which uses have a shortcut) at 0."""
    lines = [
        "# He initialisation (fan_out, relu) for convolutions; BN weight 1, bias 0.",
        "for m in self.modules():",
        "    if isinstance(m, nn.Conv2d):",
        '        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")',
        "    elif isinstance(m, nn.BatchNorm2d):",
        "        nn.init.ones_(m.weight)",
        "        nn.init.zeros_(m.bias)",
    ]
    zero = [(cls, bns) for cls, bns in last_bns.items() if bns]
    if zero:
        lines += [
            "if zero_init_residual:",
            "    # The last BN of each residual branch starts at 0: every block starts as an identity.",
            "    for m in self.modules():",
        ]
        for i, (cls, bns) in enumerate(zero):
            guards = {guard for _, guard in bns}
            test = f"isinstance(m, {cls})"
            if len(guards) == 1 and None not in guards:  # one flag for all: in the test itself
                test += f" and {guards.pop().format(m='m')}"
                bns = [(bn, None) for bn, _ in bns]
            lines.append(f"        {'if' if i == 0 else 'elif'} {test}:")
            for bn, guard in bns:
                zeroing = f"nn.init.zeros_({bn.format(m='m')}.weight)"
                if guard:
                    lines += [f"            if {guard.format(m='m')}:", f"                {zeroing}"]
                else:
                    lines.append(f"            {zeroing}")
    return lines
