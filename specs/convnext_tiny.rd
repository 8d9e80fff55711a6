# ConvNeXt-T: Liu et al. 2022, "A ConvNet for the 2020s", Sec. 2-3 and Table 9, as torchvision's
# convnext_tiny builds it: a 4x4/4 patchify stem, stages of 3-3-9-3 blocks at widths 96-192-384-768
# with a layer norm and a 2x2/2 conv between them, and blocks of a 7x7 depthwise conv, a layer norm,
# an inverted bottleneck of two Linear layers over the channels with GELU, and a layer scale.
# torchvision 0.29: 28,589,128 params, 4.46 GFLOPs. Stochastic depth as torchvision's: per sample,
# rescaled in training (StochasticDepth(p, "row")), p growing linearly over the 18 blocks from 0 to
# 0.1 (drop 0.1 * i / 17 at block i = 0..17). The `name:` options give torchvision's module names,
# so its weights load with strict=True: its `block` Sequential holds parameterless Permutes at
# positions 1 and 6, written here as `placeholder`s (nn.Identity) where a later position needs them.

# torchvision's CNBlock: `features.S.i.block.0` ... `block.5` and `layer_scale`
block cnblock(scale = 1e-6) {
    residual {
        conv 7x7, in.channels, groups: in.channels, bias: true, name: "block.0"
        placeholder name: "block.1"  # Permute([0, 2, 3, 1]): NCHW to NHWC
        layernorm name: "block.2"
        pointwise 4 * in.channels, name: "block.3"; gelu name: "block.4"
        pointwise in.channels, name: "block.5"  # block.6 is the Permute back: nothing after it
        layerscale scale
    }
}

# between stages: `features.S.0` LayerNorm2d, `features.S.1` a 2x2/2 conv
block downsample(out) {
    layernorm
    conv 2x2, out, stride: 2, pad: 0, bias: true
}

network convnext_tiny {
    input 3x224x224
    classes 1000
    shortcut identity
    survival linear(first: 1, last: 0.9, mode: per_sample)

    stem(name: "features.0.#") { conv 4x4, 96, stride: 4, pad: 0, bias: true; layernorm }
    stage s1(name: "features.1.{i}") = cnblock() * 3
    stage d2(name: "features.2.#") = downsample(192)
    stage s2(name: "features.3.{i}") = cnblock() * 3
    stage d3(name: "features.4.#") = downsample(384)
    stage s3(name: "features.5.{i}") = cnblock() * 9
    stage d4(name: "features.6.#") = downsample(768)
    stage s4(name: "features.7.{i}") = cnblock() * 3
    head {
        avgpool global
        layernorm name: "classifier.0"; placeholder name: "classifier.1"  # classifier.1: nn.Flatten
        fc classes, name: "classifier.2"
    }

    expect params == 28589128
}
