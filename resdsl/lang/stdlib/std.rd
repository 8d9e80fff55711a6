# std.rd: resdsl's standard block library. `import "std.rd"` finds it from any spec.
# Sources: He et al. 2015 (basic, bottleneck), He et al. 2016 "Identity Mappings" (preact_*),
# Lin et al. 2013 "Network in Network" (mlpconv), Huang et al. 2017 (dense_layer, transition),
# Simonyan & Zisserman 2014 (conv_relu).

# Where a strided bottleneck puts its stride: "first" on the first 1x1 (the paper, v1) or
# "middle" on the 3x3 (torchvision, "v1.5"). Override with --set stride_at=middle.
param stride_at = "first"

# Figure 2 / Figure 5 left: two 3x3 convs; the second ReLU comes after the addition.
block basic(width, stride = 1) {
    residual {
        conv 3x3, width, stride: stride; bn; relu
        conv 3x3, width; bn
    }
    relu
}

# Figure 5 right: 1x1 reduce, 3x3, 1x1 expand to width * expansion.
block bottleneck(width, stride = 1, expansion = 4) {
    residual {
        conv 1x1, width, stride: stride if stride_at == "first" else 1; bn; relu
        conv 3x3, width, stride: stride if stride_at == "middle" else 1; bn; relu
        conv 1x1, width * expansion; bn
    }
    relu
}

# Full pre-activation (Identity Mappings, Fig. 4e): BN and ReLU before each conv, nothing after
# the addition. A projection shortcut takes the pre-activated input, as in the authors' code.
block preact_basic(width, stride = 1) {
    residual {
        preact { bn; relu }
        conv 3x3, width, stride: stride
        bn; relu; conv 3x3, width
    }
}

block preact_bottleneck(width, stride = 1, expansion = 4) {
    residual {
        preact { bn; relu }
        conv 1x1, width
        bn; relu; conv 3x3, width, stride: stride
        bn; relu; conv 1x1, width * expansion
    }
}

# Network in Network: a kxk conv followed by two 1x1 convs (a small MLP over each patch).
block mlpconv(k, c1, c2, c3) {
    conv k, c1, bias: true; relu
    conv 1x1, c2, bias: true; relu
    conv 1x1, c3, bias: true; relu
}

# DenseNet: modules named as torchvision's (`name:`, docs/codegen.md), so its weights load.
# Each layer's output is concatenated to its input (a concatenation shortcut).
block dense_layer(growth) {
    dense { bn; relu; conv 3x3, growth }
}

block transition(width) {
    bn name: "norm"; relu name: "relu"; conv 1x1, width, name: "conv"
    avgpool 2x2, name: "pool"
}

# VGG: a 3x3 conv with bias and a ReLU (no BN), and the 2x2 max-pool between stages.
block conv_relu(width) {
    conv 3x3, width, bias: true; relu
}

block pool2() {
    maxpool 2x2
}

# ResNeXt (Xie et al. 2017) and Wide ResNet-50 (Zagoruyko & Komodakis 2016) as torchvision writes
# them: a bottleneck whose inner width is planes * width_per_group / 64 * groups, the 3x3 conv
# grouped and strided. groups 1 and width_per_group 64 give ResNet-50 v1.5's bottleneck.
block grouped_bottleneck(planes, stride = 1, groups = 1, width_per_group = 64, expansion = 4) {
    residual {
        conv 1x1, planes * width_per_group // 64 * groups; bn; relu
        conv 3x3, planes * width_per_group // 64 * groups, stride: stride, groups: groups; bn; relu
        conv 1x1, planes * expansion; bn
    }
    relu
}

# DenseNet-BC (Huang et al. 2017): a bottleneck layer, 1x1 conv to bn_size * growth, then 3x3 to growth.
block dense_bottleneck(growth, bn_size = 4) {
    dense {
        bn name: "norm1"; relu name: "relu1"; conv 1x1, bn_size * growth, name: "conv1"
        bn name: "norm2"; relu name: "relu2"; conv 3x3, growth, name: "conv2"
    }
}

# Squeeze-and-excitation (Hu et al. 2018, "Squeeze-and-Excitation Networks", Fig. 3): global
# pooling, a 1x1 bottleneck to in.channels / reduction, and a sigmoid weight per channel that
# scales the gate's input. The 1x1 convs have biases, as in the paper's fc layers and timm's SEModule.
block se(reduction = 16) {
    gate {
        avgpool global
        conv 1x1, in.channels // reduction, bias: true; relu
        conv 1x1, in.channels, bias: true; sigmoid
    }
}

# SE-ResNet's bottleneck as timm's seresnet50 builds it: the v1.5 bottleneck (stride on the 3x3)
# with an SE gate on the residual branch, before the addition.
block se_bottleneck(width, stride = 1, expansion = 4, reduction = 16) {
    residual {
        conv 1x1, width; bn; relu
        conv 3x3, width, stride: stride; bn; relu
        conv 1x1, width * expansion; bn
        se(reduction)
    }
    relu
}
