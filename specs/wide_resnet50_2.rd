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
