# fuzz regression: a regular stage of a block whose stride has no default (`b(stride, width)`): make_stage called the copies without it (missing argument)
block b(stride, width) {
    residual { conv 3x3, width, stride: stride; bn }
}
network t {
    input 3x16x16
    classes 2
    shortcut B
    stage s = b(2, 4) * 3
    head { avgpool global; fc classes }
}
