# DenseNet-121: Huang et al. 2017, "Densely Connected Convolutional Networks", Table 1
# (DenseNet-BC: bottleneck layers, compression 0.5), as torchvision's densenet121 builds it:
# growth 32, blocks of 6-12-24-16 layers, 64 stem channels. torchvision 0.29: 7,978,856 params,
# 2.83 GFLOPs. Modules are named as torchvision's (`features.denseblock1.denselayer1.norm1`,
# `features.transition1.conv`, `classifier`), so its weights load with strict=True.
import "std.rd"

param k = 32

network densenet121 {
    input 3x224x224
    classes 1000
    shortcut none

    stem {
        conv 7x7, 64, stride: 2, name: "features.conv0"; bn name: "features.norm0"; relu name: "features.relu0"
        maxpool 3x3, stride: 2, pad: 1, name: "features.pool0"
    }
    stage dense1(name: "features.denseblock1.denselayer{n}") = dense_bottleneck(k) * 6
    stage trans1(name: "features.transition1") = transition((64 + 6 * k) // 2)
    stage dense2(name: "features.denseblock2.denselayer{n}") = dense_bottleneck(k) * 12
    stage trans2(name: "features.transition2") = transition((128 + 12 * k) // 2)
    stage dense3(name: "features.denseblock3.denselayer{n}") = dense_bottleneck(k) * 24
    stage trans3(name: "features.transition3") = transition((256 + 24 * k) // 2)
    stage dense4(name: "features.denseblock4.denselayer{n}") = dense_bottleneck(k) * 16
    head { bn name: "features.norm5"; relu; avgpool global; fc classes, name: "classifier" }

    expect layers == 121
    expect params == 7978856
}
