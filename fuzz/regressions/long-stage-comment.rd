# fuzz regression: a stage comment over 88 columns ending in `)` was split like a call (layout.wrap_call): model.py did not parse
import "std.rd"
param width = 1
network t {
    input 3x2x2
    classes 9
    stage dense2 = dense_layer(1) * 1, transition(width + width + width + width + width, shortcut: identity)
    head { fc classes }
}
