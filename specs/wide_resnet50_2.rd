# Wide ResNet-50-2: Zagoruyko & Komodakis 2016, "Wide Residual Networks", as torchvision's
# wide_resnet50_2 builds it: ResNet-50 (v1.5, stride on the 3x3) with every bottleneck's inner
# width doubled (width_per_group 128). torchvision 0.29: 68,883,240 params, 11.40 GFLOPs.
import "std.rd"

param wpg = 128

network wide_resnet50_2 {
    input 3x224x224
    classes 1000
    shortcut B

    stem { conv 7x7, 64, stride: 2; bn; relu; maxpool 3x3, stride: 2, pad: 1 }
    stage conv2 = grouped_bottleneck(64, width_per_group: wpg) * 3
    stage conv3 = grouped_bottleneck(128, stride: 2, width_per_group: wpg) * 4
    stage conv4 = grouped_bottleneck(256, stride: 2, width_per_group: wpg) * 6
    stage conv5 = grouped_bottleneck(512, stride: 2, width_per_group: wpg) * 3
    head { avgpool global; fc classes }

    expect layers == 50
    expect params == 68883240
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
