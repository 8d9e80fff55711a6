# fuzz regression: formals `def` and `def_` both became the Python parameter `def_` (safe_local): model.py did not parse (duplicate argument)
block e(def, def_) {
    conv 1x1, def + def_
}
network t {
    input 4x8x8
    classes 2
    stage s = e(1, 2) * 2, e(def_: 3, def: 1)
    head { avgpool global; fc classes }
}
