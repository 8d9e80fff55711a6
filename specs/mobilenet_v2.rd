# MobileNetV2: Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
# Table 2, as torchvision's mobilenet_v2 builds it (width 1.0): inverted residual blocks (a 1x1
# expansion by t, a 3x3 depthwise conv, a linear 1x1 projection) with an identity shortcut only
# where the block keeps the shape. torchvision 0.29: 3,504,872 params, 0.30 GFLOPs. The `name:`
# options give torchvision's module names, so its weights load with strict=True.

# An inverted residual with expansion t: its widths follow from its input (`in.channels`); with
# t = 1 (the first block) there is no expansion conv. Two branches, because torchvision numbers
# the modules of `conv` by position: the depthwise conv is conv.1 with an expansion, conv.0 without.
# The ReLU6s are named too (conv.0.2, as torchvision's Conv2dNormActivation holds them), so that
# `conv` runs as one nn.Sequential.
block inverted_residual(out, stride = 1, t = 6) {
    residual(shortcut: identity_or_none) {
        if t != 1 {
            conv 1x1, in.channels * t, name: "conv.0.0"; bn name: "conv.0.1"; relu6 name: "conv.0.2"
            conv 3x3, in.channels * t, stride: stride, groups: in.channels * t, name: "conv.1.0"
            bn name: "conv.1.1"; relu6 name: "conv.1.2"
            conv 1x1, out, name: "conv.2"; bn name: "conv.3"
        } else {
            conv 3x3, in.channels, stride: stride, groups: in.channels, name: "conv.0.0"; bn name: "conv.0.1"
            relu6 name: "conv.0.2"
            conv 1x1, out, name: "conv.1"; bn name: "conv.2"
        }
    }
}

network mobilenet_v2 {
    input 3x224x224
    classes 1000

    stem(name: "features.0.#") { conv 3x3, 32, stride: 2; bn; relu6 }
    stage b1(name: "features.#") = inverted_residual(16, t: 1)
    stage b2(name: "features.#") = inverted_residual(24, stride: 2) * 2
    stage b3(name: "features.#") = inverted_residual(32, stride: 2) * 3
    stage b4(name: "features.#") = inverted_residual(64, stride: 2) * 4
    stage b5(name: "features.#") = inverted_residual(96) * 3
    stage b6(name: "features.#") = inverted_residual(160, stride: 2) * 3
    stage b7(name: "features.#") = inverted_residual(320)
    head {
        conv 1x1, 1280, name: "features.18.0"; bn name: "features.18.1"; relu6 name: "features.18.2"
        avgpool global
        dropout 0.2, name: "classifier.0"; fc classes, name: "classifier.1"
    }

    expect layers == 53
    expect params == 3504872
}
