# fuzz regression: `fc classes, name: "a.1.x"` in the head: `check` passed and the generated module failed to build
# (`self.a[1].x = ...` on an nn.Sequential holding one module, IndexError); now a located error of `check`
param n = 2

block b(c, stride = 1) {
    residual {
        conv 3x3, c, stride: stride; bn; relu
        conv 3x3, c; bn
    }
    relu
}

network t {
    input 3x8x8
    classes 3
    shortcut B
    stem { conv 3x3, 4; bn; relu }
    stage s1 = b(4) * n
    stage s2 = b(8, stride: 2) * n
    head { avgpool global; fc classes, name: "a.1.x" }
}
