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

# The paper's ImageNet recipe (Sec. 3.4): batch 256, SGD momentum 0.9, weight decay 1e-4, lr 0.1
# divided by 10 when the validation error plateaus, up to 60x10^4 iterations; the shorter side
# resized to a random size in [256, 480], a random 224x224 crop, flip, per-pixel mean subtracted,
# AlexNet's PCA colour noise (std 0.1). An epoch of ImageNet-1k at batch 256 is 5004 iterations.
train {
    dataset imagenet
    batch 256
    optimizer sgd(lr: 0.1, momentum: 0.9, weight_decay: 1e-4)
    schedule plateau(factor: 0.1, patience: 5)
    iterations 600000
    augment scale: [256, 480], crop: 224, flip: true, lighting: 0.1
    normalize per_pixel_mean
    eval_every 5004
    checkpoint_every 5004
}
