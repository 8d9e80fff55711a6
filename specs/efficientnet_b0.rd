# EfficientNet-B0: Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
# Networks", Table 1, as torchvision's efficientnet_b0 builds it: MBConv blocks (a 1x1 expansion by
# 6, a depthwise conv, a squeeze-and-excitation gate, a linear 1x1 projection) with SiLU, an
# identity shortcut only where the block keeps the shape, and BatchNorm2d's defaults (torchvision
# passes eps 1e-3 only to B5-B7 and V2). torchvision 0.28: 5,288,548 params, 0.39 GFLOPs. The
# `name:` options give torchvision's module names (`features.2.0.block.2.fc1`), so its weights
# load with strict=True. torchvision's stochastic depth (0.2, per sample) is left out: it drops
# nothing at test time, where this spec computes what torchvision's does (docs/zoo.md).

# torchvision's SqueezeExcitation with SiLU: `squeeze` is a quarter of the MBConv's input width.
block squeeze_excite(squeeze) {
    gate {
        avgpool global, name: "avgpool"
        conv 1x1, squeeze, bias: true, name: "fc1"; silu name: "activation"
        conv 1x1, in.channels, bias: true, name: "fc2"; sigmoid name: "scale_activation"
    }
}

# MBConv6: torchvision's Sequential `block` holds the expansion (0), the depthwise conv (1), the
# gate (2) and the projection (3).
block mbconv(out, k, stride = 1, t = 6) {
    residual(shortcut: identity_or_none) {
        conv 1x1, in.channels * t, name: "block.0.0"; bn name: "block.0.1"; silu name: "block.0.2"
        conv k, in.channels * t, stride: stride, groups: in.channels * t, name: "block.1.0"
        bn name: "block.1.1"; silu name: "block.1.2"
        squeeze_excite(max(1, in.channels // 4), name: "block.2")
        conv 1x1, out, name: "block.3.0"; bn name: "block.3.1"
    }
}

# MBConv1 (the first stage): no expansion, so the depthwise conv is block.0.
block mbconv1(out, k, stride = 1) {
    residual(shortcut: identity_or_none) {
        conv k, in.channels, stride: stride, groups: in.channels, name: "block.0.0"
        bn name: "block.0.1"; silu name: "block.0.2"
        squeeze_excite(max(1, in.channels // 4), name: "block.1")
        conv 1x1, out, name: "block.2.0"; bn name: "block.2.1"
    }
}

network efficientnet_b0 {
    input 3x224x224
    classes 1000

    stem(name: "features.0.#") { conv 3x3, 32, stride: 2; bn; silu }
    # Table 1's stages 2-8: width, kernel, stride, layers
    stage s2(name: "features.1.{i}") = mbconv1(16, 3)
    stage s3(name: "features.2.{i}") = mbconv(24, 3, stride: 2) * 2
    stage s4(name: "features.3.{i}") = mbconv(40, 5, stride: 2) * 2
    stage s5(name: "features.4.{i}") = mbconv(80, 3, stride: 2) * 3
    stage s6(name: "features.5.{i}") = mbconv(112, 5) * 3
    stage s7(name: "features.6.{i}") = mbconv(192, 5, stride: 2) * 4
    stage s8(name: "features.7.{i}") = mbconv(320, 3)
    head {
        conv 1x1, 1280, name: "features.8.0"; bn name: "features.8.1"; silu name: "features.8.2"
        avgpool global
        dropout 0.2, name: "classifier.0"; fc classes, name: "classifier.1"
    }

    expect layers == 50 + 2 * 16  # and two 1x1 convs in each of the 16 gates
    expect params == 5288548
}
