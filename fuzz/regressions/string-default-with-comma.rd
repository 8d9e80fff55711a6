# fuzz regression: a long make_stage signature was split at every ", ", also inside a string default (`mode = "x, y"`): model.py did not parse (layout.wrap_method_line)
block b(width, stride = 1, mode = "x, y, z, and some more words to make the line long") {
    residual { conv 3x3, width, stride: stride; bn }
}
network t {
    input 4x8x8
    classes 2
    shortcut B
    stage s = b(8, stride: 2) * 3
    head { avgpool global; fc classes }
}
