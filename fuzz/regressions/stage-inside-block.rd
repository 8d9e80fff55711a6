# fuzz regression: a `stage` line moved into a block body (small mobilenet_v2, found by `--target names`): `check` passes it and the code generator says "the block holds a statement that does not lower (a bug: check passed it)"
# fixed: a statement that does not lower is reported at each use also in the branch of an `if` the use does not take (the class builds both)

block inverted_residual(out, stride = 1, t = 6) {
    residual(shortcut: identity_or_none) {
        if t != 1 {
            conv 1x1, in.channels * t, name: "conv.0.0"; bn name: "conv.0.1"; relu6 name: "conv.0.2"
            conv 3x3, in.channels * t, stride: stride, groups: in.channels * t, name: "conv.1.0"
            bn name: "conv.1.1"; relu6 name: "conv.1.2"
            conv 1x1, out, name: "conv.2"; bn name: "conv.3"
        } else {
            conv 3x3, in.channels, stride: stride, groups: in.channels, name: "conv.0.0"; bn name: "conv.0.1"
            relu6 name: "conv.0.2"
            conv 1x1, out, name: "conv.1"; bn name: "conv.2"
    stage b1(name: "features.#") = inverted_residual(16, t: 1)
        }
    }
}

network mobilenet_v2 {
    input 3x224x224
    classes 1.7M

    stem(name: "features.0.#") { conv 3x3, 32, stride: 2; bn; relu6 }
    stage b2(name: "features.#") = inverted_residual(24, stride: 2) * 1
    stage b3(name: "features.#") = inverted_residual(32, stride: 2) * 1
    stage b4(name: "features.#") = inverted_residual(64, stride: 2) * 1
    stage b5(name: "features.#") = inverted_residual(96) * 1
    stage b6(name: "features.#") = inverted_residual(160, stride: 2) * 1
    stage b7(name: "features.#") = inverted_residual(320)
    head {
        conv 1x1, 1280, name: "features.18.0"; bn name: "features.18.1"; relu6 name: "features.18.2"
        avgpool global
        dropout 0.2, name: "classifier.0"; fc classes, name: "classifier.1"
    }
}
