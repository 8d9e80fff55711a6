# fuzz regression: `block b(w = 1, s)` (a formal without a default after one with) became `def __init__(..., w: int = 1, s: int)`: model.py did not parse
block b(w = 1, s) {
    residual { conv 1x1, s * w }
}
block c(z = 2, x) {
    b(x, 2)
    b(s: z)
}
network t {
    input 3x8x8
    classes 2
    shortcut B
    stem { c(x: 3); c(2, 3) }
    stage s = c(x: 2) * 2, c(2, 3)
    head { avgpool global; fc classes }
}
