"""One block template -> the __init__ and forward lines of its nn.Module class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resdsl.backends.pytorch.branches import BranchWriting
from resdsl.backends.pytorch.names import Names, reach, safe_local
from resdsl.backends.pytorch.optable import ACTIVATION_MODULES, apply_text, behaviour, dilated_pad, module_text
from resdsl.backends.pytorch.pyexpr import CodegenError, Translator, compared, paren
from resdsl.backends.pytorch.sequential import Container, call_whole, dotted, render
from resdsl.backends.pytorch.slots import SlotUse
from resdsl.ir.graph import OpKind
from resdsl.ir.ops import REGISTRY
from resdsl.ir.template import CallItem, IfItem, Invalid, Item, OpItem, ResidualItem

if TYPE_CHECKING:
    from resdsl.backends.pytorch.context import GenContext


class BodyWriter(BranchWriting):
    """Walks a block's template: __init__ lines (modules) and forward lines (their use)."""

    def __init__(self, gen: GenContext, tr: Translator, uses: list[SlotUse]) -> None:
        self.gen = gen
        self.tr = tr
        self.uses = uses
        self.many = len(uses) > 1
        self.slot = 0
        self.init: list = []  # str lines, and the Containers whose literals are written at the end
        self.forward: list[str] = []
        self.indent = 0
        self.relu_done = False
        self.activations: dict[OpKind, str] = {}  # kind -> the attribute of its module
        self.channels = "in_channels"
        self.cur = "x"
        # May `cur` be modified in place? Never the block's input, nor a tensor autograd keeps
        # (a ReLU's output), nor one that may alias another (dropout at test time, a block's output).
        self.fresh = False
        self.depth = 0
        self.last_bns: list[tuple[str, str | None]] = []  # (the last BN of a residual branch, a flag saying "plain")
        self.names = Names(set())
        self.last_bn: str | None = None
        self.top_init = self.init  # stateless shared modules are declared here, never inside an `if`
        self.conditions = 0
        # `name: "conv.0.0"`: nn.Sequential containers made so far, and how many modules each holds
        self.containers: dict[str, int | None] = {}  # None: an `if` filled it differently in its branches
        self.positions: dict[str, tuple[str, str]] = {}  # `conv[0][0]` -> (`conv[0]`, "0"): its container, its place
        self.nodes: dict[str, Container] = {}  # `conv.0` -> the container made for it (in this branch)
        self.made: list[Container] = []
        # The strides of the ops so far, as expressions, and whether they alone change the spatial size
        # (every conv and pool pads to keep it): a section's `identity_or_none` test reads them.
        self.strides: list[str] = []
        self.spatial_known = True

    def emit(self, line: str) -> None:
        self.forward.append("    " * self.indent + line)

    def forward_lines(self) -> list[str]:
        return self.forward + [f"return {self.cur}"]

    def write(self, items: list[Item]) -> None:
        self.body(items)
        self.init[:] = render(self.init)
        self.forward[:] = call_whole(self.forward, [c for c in self.made if c.calls is self.forward])

    def body(self, items: list[Item]) -> None:
        for item in items:
            if isinstance(item, OpItem):
                self.op(item)
            elif isinstance(item, CallItem):
                self.invoke(item)
            elif isinstance(item, ResidualItem):
                self.section(item)
            elif isinstance(item, IfItem):
                self.conditional(item)
            elif isinstance(item, Invalid):
                raise CodegenError("the block holds a statement that does not lower (a bug: check passed it)")

    def assign(self, expr: str, fresh: bool) -> None:
        self.emit(f"out = {expr}")
        self.cur, self.fresh = "out", fresh

    def op(self, item: OpItem) -> None:
        kind, how = item.kind, behaviour(item.kind)
        if item.module_name is not None and (how.shared_in_place or kind in ACTIVATION_MODULES):
            attr = self.named_attr(item.module_name)  # its own stateless module, as torchvision's relu1
            self.put(attr, module_text(kind, {}, self.channels))
            call = f"self.{attr}({self.cur})"
            self.assign(call if self.fresh or not how.shared_in_place else f"torch.{kind.value}({self.cur})", False)
            return
        if how.shared_in_place:
            if not self.relu_done:
                self.top_init.append("self.relu = nn.ReLU(inplace=True)")
                self.relu_done = True
            # ReLU's backward reads its output: nothing may change that output in place afterwards.
            self.assign(f"self.relu({self.cur})" if self.fresh else f"torch.relu({self.cur})", False)
            return
        if kind in ACTIVATION_MODULES:
            attr = self.activation(kind)
            # Not in place, and the output is not changed in place afterwards: sigmoid's backward reads it.
            self.assign(f"self.{attr}({self.cur})", False)
            return
        if item.module_name is not None:
            attr = self.named_attr(item.module_name)
        elif item.attr is not None and self.names.get(item.attr) == item.attr:
            attr = item.attr  # decided by the IR (resdsl.ir.naming)
        else:
            raise CodegenError(f"`{item.op}` at {item.span} has no module name of its own (a bug: check named it)")
        if how.output_aliases_input:
            self.put(attr, self.module_of(item))
            self.assign(f"self.{attr}({self.cur})", self.fresh)
            return
        if how.flattens:
            self.check_fc_input(item)
            self.put(attr, self.module_of(item))
            self.assign(f"self.{attr}(torch.flatten({self.cur}, 1))", True)
            return
        module = self.module_of(item)
        if how.ends_branch_norm:
            self.last_bn = "{m}." + attr
        if how.parameter and attr in self.positions:
            raise CodegenError(
                f"`{item.op}` at {item.span} is a parameter: it cannot be in a container (check refuses it)"
            )
        self.put(attr, module)
        self.assign(apply_text(kind, f"self.{attr}", self.cur), True)

    def put(self, ref: str, module: str | Container) -> None:
        """Build a module at `self.<ref>`: an attribute, or a position of a container (`conv[0][1]`):
        in the container's literal where it is made among the same lines, else by add_module."""
        if ref not in self.positions:
            self.init.append(f"self.{ref} = {module}")
            return
        parent_ref, position = self.positions[ref]
        parent = self.nodes[dotted(parent_ref)]
        if not parent.sealed and parent.scope is self.init:
            parent.children.append(module)
            return
        parent.sealed = True
        if isinstance(module, Container):
            module.head, module.tail = f'self.{parent_ref}.add_module("{position}", ', ")"
            self.init.append(module)
        else:
            self.init.append(f'self.{parent_ref}.add_module("{position}", {module})')

    def container(self, path: str) -> Container:
        """A new nn.Sequential at `path` (`conv`, `conv.0`), its literal written where it is made."""
        node = Container(ref=reach(path.split(".")), scope=self.init, calls=self.forward)
        self.nodes[path] = node
        self.made.append(node)
        return node

    def module_of(self, item: OpItem) -> str:
        """The module of one op of the block (a fresh one: not the class's shared ReLU), its arguments
        translated to expressions of the block's own (optable.py); a conv moves `channels` on."""
        tr, a, kind = self.tr, item.args, item.kind
        how = behaviour(kind)
        args = {
            name: tr(value) if name in ("bias", "ceil", "count_pad", "p", *how.float_args) else tr.whole(value)
            for name, value in a.items()
        }
        if "pad" in item.derived and not tr.is_constant(a["kernel"]) and self.gen.non_square(item):
            k = paren(tr(a["kernel"]))  # an int or, for a non-square kernel, a tuple: half of each
            if "dilation" in a:  # the derived padding times the dilation, per dimension
                d = paren(args["dilation"])
                args["pad"] = (
                    f"({d} * ({k}[0] // 2), {d} * ({k}[1] // 2)) if isinstance({k}, tuple) else {d} * ({k} // 2)"
                )
            else:
                args["pad"] = f"({k}[0] // 2, {k}[1] // 2) if isinstance({k}, tuple) else {k} // 2"
        elif "pad" in item.derived and "dilation" in a:
            args["pad"] = dilated_pad(args["pad"], args["dilation"])
        self.track_spatial(item, args)
        module = module_text(kind, args, self.channels, self.bn_dims(item) if how.vector_form else 2, inplace=False)
        if module is None:
            raise CodegenError(f"no code for op `{item.op}` here")
        if how.output_width is not None:
            self.channels = args[how.output_width]
        if REGISTRY[kind].global_form is not None and self.gen.global_at_some_use(
            item
        ):  # `avgpool k`, k = global there
            module = f'nn.AdaptiveAvgPool2d(1) if {tr(a["kernel"])} == "global" else {module}'
        return module

    def track_spatial(self, item: OpItem, args: dict[str, str]) -> None:
        """Record the op's stride; an op that may change the spatial size otherwise (a pool or conv
        padded other than to keep it, a global or adaptive pool, an fc) makes it unknown."""
        how = behaviour(item.kind)
        if "stride" in args:
            if "pad" not in item.derived:
                self.spatial_known = False
            if args["stride"] != "1":
                self.strides.append(args["stride"])
        elif not (how.elementwise or how.ends_branch_norm or how.keeps_size):
            self.spatial_known = False

    def path_lines(self, items: list[Item], attr: str) -> list[str]:
        """__init__ lines appending a written shortcut's modules to the Sequential `self.<attr>`."""
        lines: list[str] = []
        for item in items:
            if isinstance(item, OpItem):
                if behaviour(item.kind).flattens:
                    raise CodegenError(f"`{item.op}` at {item.span}: a `shortcut {{ }}` holds convolutions, not fcs")
                lines.append(f"self.{attr}.append({self.module_of(item)})")
            elif isinstance(item, IfItem):
                test, before = self.tr(item.test), self.channels
                then = self.path_lines(item.then, attr)
                then_channels, self.channels = self.channels, before
                orelse = self.path_lines(item.orelse, attr)
                lines += [f"if {test}:"] + ["    " + line for line in then or ["pass"]]
                if orelse:
                    lines += ["else:"] + ["    " + line for line in orelse]
                if then_channels != self.channels:
                    self.channels = f"({then_channels} if {test} else {self.channels})"
            else:
                raise CodegenError("a `shortcut { }` holds a statement that does not lower (a bug: check passed it)")
        return lines

    def bn_dims(self, item: OpItem) -> int:
        """2 for a CxHxW input, 1 after an fc; the same at every use of the block."""
        dims = {len(op.in_shapes[0]) for op in self.gen.ops_of(item) if op.in_shapes and op.in_shapes[0]}
        if dims == {1}:
            return 1
        if len(dims) > 1:
            raise CodegenError(f"`bn` at {item.span} gets a vector at some uses of its block and CxHxW at others")
        return 2

    def check_fc_input(self, item: OpItem) -> None:
        """A block's class knows its input channels, not its height and width: an fc in a block reads a
        vector or a Cx1x1 tensor (after `avgpool global`) at every use."""
        for op in self.gen.ops_of(item):
            shape = op.in_shapes[0] if op.in_shapes else None
            if shape is not None and len(shape) == 3 and shape[1:] != (1, 1):
                raise CodegenError(
                    f"`fc` at {item.span} gets {'x'.join(map(str, shape))} at a use of its block; an fc inside a "
                    "block needs a vector or Cx1x1 input (put `avgpool global` before it, or move it to the head)"
                )

    def named_attr(self, wanted: str) -> str:
        """The reference (from `self`) of the module a `name:` chose: an attribute (`norm1`), or a path of
        nn.Sequential containers numbered as torchvision's (`conv.0.0` -> `conv[0][0]`), made as needed.
        Two modules of one class cannot share a name; a container's numbers run 0, 1, ... in order."""
        parts = wanted.split(".")
        if len(parts) == 1 or parts[0] not in self.containers:
            if self.names.get(parts[0]) != parts[0]:
                raise CodegenError(f"two modules of one block are named `{parts[0]}` (or it is a name the class uses)")
            if len(parts) == 1:
                return wanted
            node = self.container(parts[0])
            node.head = f"self.{parts[0]} = "
            self.init.append(node)
            self.containers[parts[0]] = 0
        for k in range(1, len(parts)):  # the parts after the first are positions (checked with the spec)
            container, path = ".".join(parts[:k]), ".".join(parts[: k + 1])
            last = k == len(parts) - 1
            if path in self.containers and not last:
                continue
            count = self.containers.get(container)
            if count is None:
                raise CodegenError(f"`{wanted}`: an `if` fills `{container}` differently; name its modules in the `if`")
            if int(parts[k]) != count:
                raise CodegenError(
                    f"`{wanted}`: `{container}` holds {count} modules here, so its next is `{container}.{count}` "
                    "(a block's containers are numbered in the order their modules run; where the original holds "
                    f'a module without parameters there, write `placeholder name: "{container}.{count}"`)'
                )
            self.containers[container] = count + 1
            ref = reach(parts[: k + 1])
            self.positions[ref] = (reach(parts[:k]), parts[k])
            if not last:
                self.containers[path] = 0
                self.put(ref, self.container(path))
        return reach(parts)

    def activation(self, kind: OpKind) -> str:
        """One stateless module per activation kind and class, like the shared `self.relu`."""
        if kind not in self.activations:
            self.activations[kind] = self.names.get(kind.value)
            self.top_init.append(f"self.{self.activations[kind]} = {ACTIVATION_MODULES[kind]}")
        return self.activations[kind]

    def invoke(self, item: CallItem) -> None:
        """A block used inside a block: its arguments are translated, its slots passed through."""
        template = self.gen.ir.blocks[item.block]
        cls = self.gen.class_names[item.block]
        args = [self.channels]
        positional = [a for a in item.call.args if a.name is None]
        callee_locals = self.gen.locals_of(item.block)
        formals = template.formals
        in_order = all(f.default is None for f in formals[: len(positional)])  # the class takes them so
        for f, a in zip(formals, positional):
            value = self.tr.whole(a.value)
            args.append(value if in_order else f"{callee_locals[f.name]}={value}")
        for a in item.call.args:
            if a.name is not None and a.name != "shortcut":
                args.append(f"{callee_locals.get(a.name, safe_local(a.name))}={self.tr.whole(a.value)}")
        callee_uses = self.gen.slot_uses.get(item.block, [])
        callee_many = len(callee_uses) > 1
        for i in range(1, len(callee_uses) + 1):
            use = self.uses[self.slot + i - 1]  # what this block's own uses need passed on
            mine = self.slot_suffix(self.slot + i - 1)
            theirs = str(i) if callee_many else ""
            if use.takes_downsample:
                args.append(f"downsample{theirs}=downsample{mine}")
            if use.stochastic:
                args.append(f"survival{theirs}=survival{mine}")
            if use.plain_flag:
                args.append(f"plain{theirs}=plain{mine}")
            elif use.modes == {"none"} and callee_uses[i - 1].plain_flag:
                args.append(f"plain{theirs}=True")  # plain here, though not in every use of the callee
        self.slot += len(callee_uses)
        module = f"{cls}({', '.join(args)})"
        if item.module_name is not None and "." in item.module_name:
            # A position of a container (`block.2`): made inside the container's literal, so the next
            # module reads its width from a local the literal binds (`block_2 := SeBlock(...)`).
            ref, local = self.named_attr(item.module_name), self.names.get(item.module_name.replace(".", "_"))
            self.put(ref, f"({local} := {module})")
            self.assign(f"self.{ref}({self.cur})", False)
            self.channels = f"{local}.out_channels"
            return
        attr = item.attr  # decided by the IR (resdsl.ir.paths): its `name:` or the block's
        if attr is None or self.names.get(attr) != attr:
            raise CodegenError(f"the use of `{item.block}` has no attribute of its own (a bug: the IR names it)")
        self.init.append(f"self.{attr} = {module}")
        self.assign(f"self.{attr}({self.cur})", False)
        self.channels = f"self.{attr}.out_channels"

    def slot_suffix(self, index: int) -> str:
        return str(index + 1) if self.many else ""

    def section(self, item: ResidualItem) -> None:
        use = self.uses[self.slot]
        suffix = self.slot_suffix(self.slot)
        self.slot += 1
        self.depth += 1
        x = "x" if self.depth == 1 else f"x{self.depth}"
        sc = "shortcut" if self.depth == 1 else f"shortcut{self.depth}"
        if self.cur != x:
            self.emit(f"{x} = {self.cur}")
        self.cur, self.fresh = x, False
        in_channels = self.channels
        if item.kind in ("concat", "mul"):  # dense: [x, body] along channels; gate: the body's weights scale x
            self.body(item.body)
            if item.kind == "concat":
                self.assign(f"torch.cat([{x}, {self.cur}], 1)", True)
                self.channels = f"{paren(in_channels)} + {paren(self.channels)}"
            else:
                self.assign(f"{x} * {self.cur}", True)
                self.channels = in_channels
            self.depth -= 1
            return
        if item.preact is not None:
            self.body(item.preact)
        plain_only = use.modes == {"none"}
        shortcut = x
        if use.takes_downsample:
            source = self.cur if item.preact is not None else x
            if item.preact is not None and {"pad", "projection"} <= use.modes:
                self.emit(f"if isinstance(self.downsample{suffix}, ZeroPadShortcut):")
                self.emit(f"    source = {x}")
                self.emit("else:")
                self.emit(f"    source = {self.cur}")
                source = "source"
            elif item.preact is not None and "pad" in use.modes:
                source = x
            self.emit(f"{sc} = {x} if self.downsample{suffix} is None else self.downsample{suffix}({source})")
            shortcut = sc
        path_init: list[str] = []
        if "path" in use.modes and item.shortcut is not None:  # written by hand: a Sequential of its ops
            attr = item.shortcut_attr  # decided by the IR (resdsl.ir.paths): its ops are `attr.0`, `attr.1`, ...
            if attr is None or self.names.get(attr) != attr:
                raise CodegenError("a written shortcut has no attribute of its own (a bug: the IR names it)")
            lines = self.path_lines(item.shortcut, attr)
            self.channels = in_channels
            path_init = [f"self.{attr} = nn.Sequential()"]
            if use.mixed_plain:  # the plain uses build none of its modules
                path_init += [f"if not plain{suffix}:"] + ["    " + line for line in lines or ["pass"]]
            else:
                path_init += lines
            self.emit(f"{sc} = self.{attr}({self.cur if item.preact is not None else x})")
            shortcut = sc
        if item.preact is not None and shortcut == sc:
            # the shortcut read the pre-activated tensor (an empty written path is that tensor itself, and a
            # projection's backward needs it): the body must not change it in place
            self.fresh = False
        self.last_bn = None
        mark, spatial_before, self.spatial_known = len(self.strides), self.spatial_known, True
        per_sample = use.stochastic and self.gen.ir.survival_mode == "per_sample"
        per_batch = use.stochastic and not per_sample
        if per_batch:
            self.emit(f"if self.training and torch.rand(1).item() >= self.survival{suffix}:")
            self.emit(f"    out = {shortcut}  # stochastic depth: this batch skips the residual branch")
            self.emit("else:")
            self.indent += 1
        self.body(item.body)
        self.init += path_init  # registered after the body, as torchvision registers `downsample`
        keeps = guard = None  # the test saying "this use adds the shortcut", in forward and for zero_init
        if use.decides_plain and self.spatial_known:
            flag = self.names.get(f"use_shortcut{suffix}")
            shape_kept = [f"{compared(st)} == 1" for st in self.strides[mark:]]
            shape_kept.append(f"{compared(in_channels)} == {compared(self.channels)}")
            self.init += ["# identity_or_none: the shortcut where the body keeps the shape",
                          f"self.{flag} = {' and '.join(shape_kept)}"]  # fmt: skip
            keeps, guard = f"self.{flag}", f"{{m}}.{flag}"
        elif use.decides_plain:  # a size the strides alone do not give: the shapes tell, at run time
            keeps = f"out.shape == {shortcut}.shape"
        elif use.mixed_plain:
            keeps, guard = f"not self.plain{suffix}", f"not {{m}}.plain{suffix}"
        self.spatial_known = spatial_before and self.spatial_known
        if self.last_bn and not plain_only:  # a plain use has no identity to start from: never zeroed
            if (self.last_bn, guard) not in self.last_bns:
                self.last_bns.append((self.last_bn, guard))
        if per_batch:
            self.emit("if not self.training:")
            self.emit(f"    out = out * self.survival{suffix}  # test time: the branch's expected share")
        if per_sample:
            self.per_sample_drop(suffix)
        body_fresh = self.fresh
        if not plain_only:
            add = f"out += {shortcut}" if self.fresh else f"out = {self.cur} + {shortcut}"
            if keeps is not None:
                self.emit(f"if {keeps}:")
                self.emit("    " + add)
            else:
                self.emit(add)
        if per_batch:
            self.indent -= 1
            self.fresh = False
        elif use.mixed_plain:
            self.fresh = body_fresh  # a plain use skips the addition: `out` is still the body's tensor
        elif not plain_only:
            self.fresh = True
        self.cur = "out"
        self.depth -= 1

    def per_sample_drop(self, suffix: str) -> None:
        """Stochastic depth per sample (torchvision's StochasticDepth(p, "row")): in training each image
        keeps the branch with its survival probability s, rescaled by 1 / s; at test time the identity.
        The mask is drawn as torchvision draws it, so a seeded run gives the same images the same masks."""
        if self.cur != "out":
            self.emit(f"out = {self.cur}")
            self.cur = "out"
        s = f"self.survival{suffix}"
        self.emit("# stochastic depth per sample: each image keeps the branch with p, rescaled by 1 / p")
        self.emit(f"if self.training and {s} < 1.0:")
        self.emit("    keep = torch.empty([out.shape[0]] + [1] * (out.dim() - 1), dtype=out.dtype, device=out.device)")
        self.emit(f"    out = out * keep.bernoulli_({s}).div_({s})")
