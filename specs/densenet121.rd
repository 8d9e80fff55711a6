# DenseNet-121: Huang et al. 2017, "Densely Connected Convolutional Networks", Table 1
# (DenseNet-BC: bottleneck layers, compression 0.5), as torchvision's densenet121 builds it:
# growth 32, blocks of 6-12-24-16 layers, 64 stem channels. torchvision 0.29: 7,978,856 params,
# 2.83 GFLOPs.
import "std.rd"

param k = 32

network densenet121 {
    input 3x224x224
    classes 1000
    shortcut none

    stem { conv 7x7, 64, stride: 2; bn; relu; maxpool 3x3, stride: 2, pad: 1 }
    stage dense1 = dense_bottleneck(k) * 6, transition((64 + 6 * k) // 2)
    stage dense2 = dense_bottleneck(k) * 12, transition((128 + 12 * k) // 2)
    stage dense3 = dense_bottleneck(k) * 24, transition((256 + 24 * k) // 2)
    stage dense4 = dense_bottleneck(k) * 16
    head { bn; relu; avgpool global; fc classes }

    expect layers == 121
    expect params == 7978856
}
