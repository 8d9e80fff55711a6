# fuzz regression: a formal named `ZeroPadShortcut` (or after a block's class, `BasicBlock`) became a parameter that hid the file's class where make_stage or __init__ calls it ('int' object is not callable)
block basic(ZeroPadShortcut, stride = 1) {
    residual { conv 3, ZeroPadShortcut, stride: stride }
}
block other(BasicBlock) {
    basic(BasicBlock, stride: 2)
}
network t {
    input 3x4x4
    classes 2
    shortcut A
    stage s = basic(4, stride: 2) * 2
    stage u = other(8)
    head { avgpool global; fc classes }
}
