# fuzz regression: `maxpool 3, stride: 1e18` in the stem passes check and verifies on the meta device; the real module fails (RuntimeError: value cannot be converted to type int without overflow)
network t {
    input 3x3x3
    classes 2
    stem { maxpool 3, stride: 1e18 }
    head { avgpool global; fc classes }
}
