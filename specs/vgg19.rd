# VGG-19 (configuration E): Simonyan & Zisserman 2014, the reference of He et al. 2015, Fig. 3
# left (16 3x3 convs with bias and no BN, five 2x2 max-pools, three fc layers with dropout).
# Modules are named as torchvision's (`features.0` ... `classifier.6`), so its weights load.
import "std.rd"

network vgg19 {
    input 3x224x224
    classes 1000
    shortcut none

    stage conv1(name: "features.#") = conv_relu(64) * 2, pool2()
    stage conv2(name: "features.#") = conv_relu(128) * 2, pool2()
    stage conv3(name: "features.#") = conv_relu(256) * 4, pool2()
    stage conv4(name: "features.#") = conv_relu(512) * 4, pool2()
    stage conv5(name: "features.#") = conv_relu(512) * 4, pool2()
    head(name: "classifier.#") {
        adaptive_avgpool 7x7, name: "avgpool"  # torchvision: any input size gives the classifier 512x7x7
        fc 4096; relu; dropout 0.5
        fc 4096; relu; dropout 0.5
        fc classes
    }

    expect layers == 19
    expect flops  ~= 19.6G
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
