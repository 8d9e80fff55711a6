# fuzz regression: a block used both plain (`shortcut: none`) and with a shortcut, whose residual body ends in relu, followed by relu: the generated forward applied the in-place ReLU to the body's ReLU output in the plain use (autograd: "modified by an inplace operation" in backward)
block basic(width, stride) {
    residual { conv 3, width; relu }
    relu
}
network t {
    input 3x2x2
    classes 1
    shortcut A
    stage s1 = basic(1, 1, shortcut: none)
    stage s2 = basic(4, 1)
    head { avgpool global; fc classes }
}
