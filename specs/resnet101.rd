# ResNet-101 for ImageNet: He et al. 2015, Table 1 (option B shortcuts: projections only where
# the shape changes). Stride on the first 1x1 as in the paper; --set stride_at=middle for torchvision's v1.5.
import "std.rd"

network resnet101 {
    input 3x224x224
    classes 1000
    shortcut B

    stem { conv 7x7, 64, stride: 2; bn; relu; maxpool 3x3, stride: 2, pad: 1 }
    stage conv2 = bottleneck(64) * 3
    stage conv3 = bottleneck(128, stride: 2) * 4
    stage conv4 = bottleneck(256, stride: 2) * 23
    stage conv5 = bottleneck(512, stride: 2) * 3
    head { avgpool global; fc classes }

    expect layers == 101
}
