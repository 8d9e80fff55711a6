# fuzz regression: a pool inside `preact { }` passed check; the projection shortcut took the pooled input and the identity took raw x, so the generated module failed to build (broadcast 8x8 to 16x16); now a shape-changing preact is an error
block pool2() {
    maxpool 2x2
}
block pb(width, stride = 1) {
    residual {
        preact { maxpool 2x2; bn; relu }
        conv 1x1, width
        bn; relu; conv 3x3, width, stride: stride
    }
}
network t {
    input 3x32x32
    classes 10
    shortcut B
    stem { conv 3x3, 16 }
    stage s1 = pb(16)
    stage s2 = pb(32, stride: 2)
    head { bn; relu; avgpool global; fc classes }
}
