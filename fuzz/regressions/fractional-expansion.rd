# fuzz regression: `in.channels * t` with t = 0.5 is whole at every use (16 * 0.5 = 8), but the generated class wrote `nn.Conv2d(in_channels, in_channels * t, ...)`, a float that torch refuses: a product with a block argument given a fraction is now written `int(...)`
block inverted_residual(out, stride = 1, t = .5) {
    residual(shortcut: identity_or_none) {
        if t != 1 { conv 1x1, in.channels * t; bn; relu6 }
        conv 3x3, in.channels * t, stride: stride, groups: in.channels * t; bn; relu6
        conv 1x1, out; bn
    }
}

network t {
    input 3x32x32
    classes 10

    stem { conv 3x3, 16, stride: 2; bn; relu6 }
    stage b1 = inverted_residual(16, t: 1)
    stage b2 = inverted_residual(24, stride: 2)
    head { avgpool global; fc classes }
}
