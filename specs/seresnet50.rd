# SE-ResNet-50: Hu et al. 2018, "Squeeze-and-Excitation Networks", Table 1 (SE-ResNet-50,
# reduction 16), as timm's seresnet50 builds it: ResNet-50 v1.5 (stride on the 3x3, option B
# projections) with an SE gate at the end of every residual branch.
# timm 1.0: 28,088,024 params (ResNet-50's 25,557,032 plus 2,530,992 in the gates).
import "std.rd"

network seresnet50 {
    input 3x224x224
    classes 1000
    shortcut B

    stem { conv 7x7, 64, stride: 2; bn; relu; maxpool 3x3, stride: 2, pad: 1 }
    stage conv2 = se_bottleneck(64) * 3
    stage conv3 = se_bottleneck(128, stride: 2) * 4
    stage conv4 = se_bottleneck(256, stride: 2) * 6
    stage conv5 = se_bottleneck(512, stride: 2) * 3
    head { avgpool global; fc classes }

    expect layers == 50 + 2 * 16  # and two 1x1 convs in each of the 16 gates
    expect params == 28088024
}
