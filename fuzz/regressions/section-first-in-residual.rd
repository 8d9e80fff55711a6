# fuzz regression: a section whose body starts with another section (`residual { dense { ... } ... }`) lost the inner one (codegen.residual_starts): IndexError in the code generator
block b(w) {
    residual {
        dense { conv 3x3, w }
        conv 1x1, w
    }
}
network t {
    input 3x8x8
    classes 2
    shortcut B
    stage s = b(4) * 2
    head { avgpool global; fc classes }
}
