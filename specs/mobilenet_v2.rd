# MobileNetV2: Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
# Table 2, as torchvision's mobilenet_v2 builds it (width 1.0): inverted residual blocks (a 1x1
# expansion by t, a 3x3 depthwise conv, a linear 1x1 projection) with an identity shortcut only
# where the block keeps the shape. torchvision 0.29: 3,504,872 params, 0.30 GFLOPs.

# An inverted residual with expansion t: its widths follow from its input (`in.channels`); with
# t = 1 (the first block) there is no expansion conv.
block inverted_residual(out, stride = 1, t = 6) {
    residual(shortcut: identity_or_none) {
        if t != 1 { conv 1x1, in.channels * t; bn; relu6 }
        conv 3x3, in.channels * t, stride: stride, groups: in.channels * t; bn; relu6
        conv 1x1, out; bn
    }
}

network mobilenet_v2 {
    input 3x224x224
    classes 1000

    stem { conv 3x3, 32, stride: 2; bn; relu6 }
    stage b1 = inverted_residual(16, t: 1)
    stage b2 = inverted_residual(24, stride: 2) * 2
    stage b3 = inverted_residual(32, stride: 2) * 3
    stage b4 = inverted_residual(64, stride: 2) * 4
    stage b5 = inverted_residual(96) * 3
    stage b6 = inverted_residual(160, stride: 2) * 3
    stage b7 = inverted_residual(320)
    head { conv 1x1, 1280; bn; relu6; avgpool global; dropout 0.2; fc classes }

    expect layers == 53
    expect params == 3504872
}
