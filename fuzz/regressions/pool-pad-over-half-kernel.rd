# fuzz regression: a pool padded by more than half its kernel passes check, but nn.MaxPool2d/AvgPool2d refuse it: the module failed to build
# xfail: front end (ir/passes.py _window, or the pool signatures in lang/signatures.py) should reject pad > kernel // 2 for pools
network t {
    input 3x4x4
    classes 2
    stem { maxpool 2x2, pad: 2 }
    head { avgpool global; fc classes }
}
