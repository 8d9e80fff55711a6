# MobileNetV3-Large: Howard et al. 2019, "Searching for MobileNetV3", Table 1, as torchvision's
# mobilenet_v3_large builds it (width 1.0): inverted residuals (a 1x1 expansion, a depthwise conv,
# optionally a squeeze-and-excitation gate, a linear 1x1 projection) with hard swish or ReLU, an
# identity shortcut only where the block keeps the shape, BN eps 0.001 and momentum 0.01.
# torchvision 0.28: 5,483,032 params, 0.22 GFLOPs. The `name:` options give torchvision's module
# names (`features.4.block.2.fc1`), so its weights load with strict=True.

param bn_eps = 0.001
param bn_momentum = 0.01

# torchvision's SqueezeExcitation: fc1 and fc2 are 1x1 convs with bias, ReLU then hard sigmoid.
# Its width is `_make_divisible(expanded // 4, 8)`: the nearest multiple of 8 (at least 8), 8 more
# where that falls below 90% of the value (72 // 4 = 18 gives 24, not 16).
block squeeze_excite(
    q = in.channels // 4, rounded = max(8, (q + 4) // 8 * 8), squeeze = rounded + 8 if rounded < 0.9 * q else rounded
) {
    gate {
        avgpool global, name: "avgpool"
        conv 1x1, squeeze, bias: true, name: "fc1"; relu name: "activation"
        conv 1x1, in.channels, bias: true, name: "fc2"; hardsigmoid name: "scale_activation"
    }
}

# A block without SE. torchvision keeps its modules in a Sequential `block` numbered by position:
# the depthwise conv is block.1 after an expansion and block.0 without one (the first block).
block bneck(out, k, exp, hs, stride = 1) {
    residual(shortcut: identity_or_none) {
        if exp != in.channels {
            conv 1x1, exp, name: "block.0.0"; bn eps: bn_eps, momentum: bn_momentum, name: "block.0.1"
            if hs { hardswish name: "block.0.2" } else { relu name: "block.0.2" }
            conv k, exp, stride: stride, groups: exp, name: "block.1.0"
            bn eps: bn_eps, momentum: bn_momentum, name: "block.1.1"
            if hs { hardswish name: "block.1.2" } else { relu name: "block.1.2" }
            conv 1x1, out, name: "block.2.0"; bn eps: bn_eps, momentum: bn_momentum, name: "block.2.1"
        } else {
            conv k, exp, stride: stride, groups: exp, name: "block.0.0"
            bn eps: bn_eps, momentum: bn_momentum, name: "block.0.1"
            if hs { hardswish name: "block.0.2" } else { relu name: "block.0.2" }
            conv 1x1, out, name: "block.1.0"; bn eps: bn_eps, momentum: bn_momentum, name: "block.1.1"
        }
    }
}

# A block with SE (every one expands): the gate is block.2, the projection block.3.
block bneck_se(out, k, exp, hs, stride = 1) {
    residual(shortcut: identity_or_none) {
        conv 1x1, exp, name: "block.0.0"; bn eps: bn_eps, momentum: bn_momentum, name: "block.0.1"
        if hs { hardswish name: "block.0.2" } else { relu name: "block.0.2" }
        conv k, exp, stride: stride, groups: exp, name: "block.1.0"
        bn eps: bn_eps, momentum: bn_momentum, name: "block.1.1"
        if hs { hardswish name: "block.1.2" } else { relu name: "block.1.2" }
        squeeze_excite(name: "block.2")
        conv 1x1, out, name: "block.3.0"; bn eps: bn_eps, momentum: bn_momentum, name: "block.3.1"
    }
}

network mobilenet_v3_large {
    input 3x224x224
    classes 1000

    stem(name: "features.0.#") { conv 3x3, 16, stride: 2; bn eps: bn_eps, momentum: bn_momentum; hardswish }
    # Table 1's rows: bneck(width, kernel, expanded width, hard swish, stride)
    stage b1(name: "features.#") = bneck(16, 3, 16, false), bneck(24, 3, 64, false, 2), bneck(24, 3, 72, false)
    stage b2(name: "features.#") = bneck_se(40, 5, 72, false, 2), bneck_se(40, 5, 120, false) * 2
    stage b3(name: "features.#") = bneck(80, 3, 240, true, 2), bneck(80, 3, 200, true), bneck(80, 3, 184, true) * 2
    stage b4(name: "features.#") = bneck_se(112, 3, 480, true), bneck_se(112, 3, 672, true)
    stage b5(name: "features.#") = bneck_se(160, 5, 672, true, 2), bneck_se(160, 5, 960, true) * 2
    head {
        conv 1x1, 960, name: "features.16.0"; bn eps: bn_eps, momentum: bn_momentum, name: "features.16.1"
        hardswish name: "features.16.2"
        avgpool global
        fc 1280, name: "classifier.0"; hardswish name: "classifier.1"
        dropout 0.2, name: "classifier.2"; fc classes, name: "classifier.3"
    }

    expect layers == 48 + 2 * 8  # and two 1x1 convs in each of the 8 gates
    expect params == 5483032
}
