# ResNet-152 for ImageNet: He et al. 2015, Table 1 (option B shortcuts: projections only where
# the shape changes). Stride on the first 1x1 as in the paper; --set stride_at=middle for torchvision's v1.5.
import "std.rd"

network resnet152 {
    input 3x224x224
    classes 1000
    shortcut B

    stem { conv 7x7, 64, stride: 2; bn; relu; maxpool 3x3, stride: 2, pad: 1 }
    stage conv2 = bottleneck(64) * 3
    stage conv3 = bottleneck(128, stride: 2) * 8
    stage conv4 = bottleneck(256, stride: 2) * 36
    stage conv5 = bottleneck(512, stride: 2) * 3
    head { avgpool global; fc classes }

    expect layers == 152
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
