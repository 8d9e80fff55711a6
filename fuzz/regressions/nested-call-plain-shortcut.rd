# fuzz regression: a block called twice inside another, once with `shortcut: none`, got no `plain=True` at that call: the module added a shortcut the IR has not (shape mismatch)
block a(w, stride = 1) {
    residual { conv 3x3, w, stride: stride; bn }
}
block b(w, stride = 1) {
    a(w, stride: stride, shortcut: C)
    a(w * 2, shortcut: none)
}
network t {
    input 3x8x8
    classes 2
    shortcut A
    stage s(shortcut: B) = b(4, stride: 2) * 3
    head { avgpool global; fc classes }
}
