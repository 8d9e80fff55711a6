# fuzz regression: a regular stage of a block whose stride defaults to 2 (`basic(width, stride = 2) * 4`): make_stage built the copies with the class default, not stride 1 (shape mismatch)
block basic(width, stride = 2) {
    residual { conv 3x3, width, stride: stride; bn }
}
network t {
    input 3x4x24
    classes 2
    shortcut B
    stage s = basic(2) * 4
    head { avgpool global; fc classes }
}
