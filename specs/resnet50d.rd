# ResNet-50-D: He et al. 2019, "Bag of Tricks for Image Classification with Convolutional Neural
# Networks", Sec. 4.1 and Fig. 2(b-d), as timm's resnet50d builds it: a deep stem (three 3x3
# convs: ResNet-C), the stride on the 3x3 conv (ResNet-B, torchvision's v1.5) and, in the
# shortcut that changes the shape, a 2x2 average pool before the 1x1 projection (ResNet-D), so
# that the projection no longer throws away three quarters of its input.
# timm 1.0: 25,576,264 params, 4.35 GMACs at 224x224.

# The projection runs where the shape changes; the pool only where the size does.
block bottleneck_d(width, stride = 1) {
    residual {
        conv 1x1, width; bn; relu
        conv 3x3, width, stride: stride; bn; relu
        conv 1x1, 4 * width; bn
        shortcut {
            if stride > 1 { avgpool 2x2, stride: stride, ceil: true, count_pad: false }
            if stride > 1 or in.channels != 4 * width { conv 1x1, 4 * width; bn }
        }
    }
    relu
}

network resnet50d {
    input 3x224x224
    classes 1000

    stem {
        conv 3x3, 32, stride: 2; bn; relu
        conv 3x3, 32; bn; relu
        conv 3x3, 64; bn; relu
        maxpool 3x3, stride: 2, pad: 1
    }
    stage conv2 = bottleneck_d(64) * 3
    stage conv3 = bottleneck_d(128, stride: 2) * 4
    stage conv4 = bottleneck_d(256, stride: 2) * 6
    stage conv5 = bottleneck_d(512, stride: 2) * 3
    head { avgpool global; fc classes }

    expect layers == 52  # ResNet-50's 50, with two more convs in the stem
}

train {
    dataset imagenet
}
